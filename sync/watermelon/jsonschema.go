package watermelon

import (
	"reflect"
	"slices"
	"strings"

	"github.com/fieldcrm/fieldcrm/models"
)

// jsonSchemaOf describes, as a JSON Schema object, the JSON form of a value
// of type t (what encoding/json writes for it). rules are the record's field
// rules and prefix the dotted path of t's value in the record ("check_in."),
// so that a rule on "check_in.lat" reaches the property lat; the nested
// type's own rules (a Social's network) apply too.
func jsonSchemaOf(t reflect.Type, rules map[string]models.FieldRule, prefix string) map[string]any {
	nullable := false
	if t.Kind() == reflect.Pointer {
		nullable, t = true, t.Elem()
	}
	var s map[string]any
	switch {
	case t == timeType:
		s = map[string]any{"type": "string", "format": "date-time"}
	case t.Kind() == reflect.Interface:
		return map[string]any{} // any JSON value
	case t.Kind() == reflect.String:
		s = map[string]any{"type": "string"}
	case t.Kind() == reflect.Bool:
		s = map[string]any{"type": "boolean"}
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		s = map[string]any{"type": "integer"}
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		s = map[string]any{"type": "number"}
	case t.Kind() == reflect.Slice || t.Kind() == reflect.Array:
		// A nil list is written as null.
		nullable = nullable || t.Kind() == reflect.Slice
		s = map[string]any{"type": "array", "items": jsonSchemaOf(t.Elem(), rules, prefix)}
	case t.Kind() == reflect.Map:
		nullable = true
		s = map[string]any{"type": "object", "additionalProperties": jsonSchemaOf(t.Elem(), nil, "")}
	case t.Kind() == reflect.Struct:
		s = structSchema(t, rules, prefix)
	default:
		return map[string]any{}
	}
	if nullable {
		s["type"] = []string{s["type"].(string), "null"}
	}
	return s
}

// structSchema describes a struct's JSON object: its properties, with the
// enumerations and the required ones its rules name.
func structSchema(t reflect.Type, rules map[string]models.FieldRule, prefix string) map[string]any {
	own := models.FieldRules(t)
	props := map[string]any{}
	var required []string
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			name, _, _ := strings.Cut(tag, ",")
			if tag == "-" || (!f.IsExported() && !f.Anonymous) {
				continue
			}
			if f.Anonymous && name == "" {
				walk(f.Type)
				continue
			}
			if name == "" {
				name = f.Name
			}
			p := jsonSchemaOf(f.Type, rules, prefix+name+".")
			rule, ok := rules[prefix+name]
			if !ok {
				rule, ok = own[name]
			}
			if ok && len(rule.Enum) > 0 {
				p["enum"] = rule.Enum
			}
			if ok && rule.Required {
				required = append(required, name)
			}
			props[name] = p
		}
	}
	walk(t)
	s := map[string]any{"type": "object", "properties": props}
	if len(required) > 0 {
		slices.Sort(required)
		s["required"] = required
	}
	return s
}
