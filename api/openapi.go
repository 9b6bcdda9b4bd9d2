package api

import (
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/fieldcrm/fieldcrm/models"
)

// fiberParam matches a Fiber path parameter such as :id.
var fiberParam = regexp.MustCompile(`:([A-Za-z_]+)`)

// OpenAPIPath converts a Fiber path (/v1/users/:id) to OpenAPI's (/v1/users/{id}).
func OpenAPIPath(fiberPath string) string {
	return fiberParam.ReplaceAllString(fiberPath, "{$1}")
}

type object = map[string]any

// openAPIDocument describes every route of the route table in OpenAPI 3.1.
// Schemas come from the Go types the handlers decode and encode, so the document
// cannot drift from what the server accepts.
func (s *Server) openAPIDocument() object {
	schemas := object{"Problem": schemaOf(reflect.TypeFor[Problem](), nil)}
	paths := object{}
	for _, r := range s.routes {
		p := OpenAPIPath(r.path)
		item, _ := paths[p].(object)
		if item == nil {
			item = object{}
			paths[p] = item
		}
		op := object{"summary": r.summary, "tags": []string{r.tag}, "operationId": operationID(r)}
		var params []object
		for _, m := range fiberParam.FindAllStringSubmatch(r.path, -1) {
			params = append(params, object{"name": m[1], "in": "path", "required": true, "schema": object{"type": "string"}})
		}
		if params != nil {
			op["parameters"] = params
		}
		if r.request != nil {
			op["requestBody"] = object{"required": true, "content": object{
				"application/json": object{"schema": schemaOf(reflect.TypeOf(r.request), schemas)}}}
		}
		ok := object{"description": httpStatusText(r.status)}
		if r.response != nil {
			ok["content"] = object{"application/json": object{"schema": schemaOf(reflect.TypeOf(r.response), schemas)}}
		}
		responses := object{strconv.Itoa(r.status): ok}
		errs := append([]int{500}, r.errors...)
		if r.auth {
			op["security"] = []object{{"bearer": []string{}}}
			errs = append(errs, 401)
		}
		for _, code := range errs {
			responses[strconv.Itoa(code)] = object{"description": httpStatusText(code), "content": object{
				"application/problem+json": object{"schema": object{"$ref": "#/components/schemas/Problem"}}}}
		}
		op["responses"] = responses
		item[strings.ToLower(r.method)] = op
	}
	return object{
		"openapi": "3.1.0",
		"info": object{
			"title":       "fieldcrm API",
			"version":     s.cfg.Version,
			"description": "REST API of fieldcrm, the self-hosted backend for field sales teams. Errors are RFC 9457 problem documents.",
		},
		"paths": paths,
		"components": object{
			"schemas":         schemas,
			"securitySchemes": object{"bearer": object{"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
		},
	}
}

func operationID(r route) string {
	id := strings.ToLower(r.method)
	for _, part := range strings.Split(strings.Trim(r.path, "/"), "/") {
		part = strings.TrimPrefix(part, ":")
		part = strings.ReplaceAll(part, ".", "_")
		if part == "" {
			continue
		}
		id += strings.ToUpper(part[:1]) + part[1:]
	}
	return id
}

func httpStatusText(code int) string {
	texts := map[int]string{200: "OK", 201: "Created", 204: "No Content", 400: "Malformed request", 401: "Unauthenticated",
		403: "Forbidden", 404: "Not found", 409: "Conflict", 410: "Full resync required", 412: "Stale version (If-Match)", 413: "Body too large", 415: "Unsupported media type",
		422: "Invalid input", 429: "Too many attempts", 500: "Internal error", 503: "A dependency is unavailable"}
	if t, ok := texts[code]; ok {
		return t
	}
	return strconv.Itoa(code)
}

// schemaOf returns the JSON Schema of a Go type as encoding/json renders it.
// Named struct types go into components (when given) and are referenced.
func schemaOf(t reflect.Type, components object) object {
	switch t {
	case reflect.TypeFor[time.Time]():
		return object{"type": "string", "format": "date-time"}
	case reflect.TypeFor[models.Role]():
		return object{"type": "string", "enum": []string{string(models.RoleAdmin), string(models.RoleManager), string(models.RoleRep)}}
	}
	switch t.Kind() {
	case reflect.Pointer:
		inner := schemaOf(t.Elem(), components)
		if typ, ok := inner["type"].(string); ok {
			inner["type"] = []string{typ, "null"}
			return inner
		}
		return object{"oneOf": []any{inner, object{"type": "null"}}}
	case reflect.String:
		return object{"type": "string"}
	case reflect.Bool:
		return object{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return object{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return object{"type": "number"}
	case reflect.Slice, reflect.Array:
		return object{"type": "array", "items": schemaOf(t.Elem(), components)}
	case reflect.Map:
		return object{"type": "object", "additionalProperties": schemaOf(t.Elem(), components)}
	case reflect.Struct:
		name := schemaName(t)
		if components != nil && name != "" {
			if _, done := components[name]; !done {
				components[name] = object{} // placeholder against recursion
				components[name] = structSchema(t, components)
			}
			return object{"$ref": "#/components/schemas/" + name}
		}
		return structSchema(t, components)
	default:
		return object{}
	}
}

// schemaName names a component after its Go type; generic page types get the
// element's name (PageUser); unexported request types get their exported form.
func schemaName(t reflect.Type) string {
	name := t.Name()
	if i := strings.Index(name, "["); i >= 0 {
		elem := name[i+1 : len(name)-1]
		elem = elem[strings.LastIndex(elem, ".")+1:]
		name = name[:i] + elem
	}
	if name == "" {
		return ""
	}
	return strings.ToUpper(name[:1]) + name[1:]
}

func structSchema(t reflect.Type, components object) object {
	props := object{}
	collectFields(t, props, components)
	// Fields of CRM records that only the server writes are marked readOnly, so
	// generated clients leave them out of requests (the server refuses them).
	if rec, ok := reflect.New(t).Interface().(models.Record); ok {
		for _, name := range models.ServerFields(rec) {
			if p, ok := props[name].(object); ok {
				if ref, isRef := p["$ref"]; isRef {
					p = object{"allOf": []any{object{"$ref": ref}}}
				}
				p["readOnly"] = true
				props[name] = p
			}
		}
	}
	return object{"type": "object", "properties": props}
}

// collectFields adds t's JSON fields to props, flattening embedded structs as
// encoding/json does.
func collectFields(t reflect.Type, props object, components object) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			collectFields(f.Type, props, components)
			continue
		}
		if name == "" {
			name = f.Name
		}
		props[name] = schemaOf(f.Type, components)
	}
}
