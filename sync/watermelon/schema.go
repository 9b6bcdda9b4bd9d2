// Package watermelon speaks the WatermelonDB sync protocol over the CRM: the
// schema a mobile app generates its appSchema from, flat records (nested values
// as JSON-encoded string columns, times as epoch milliseconds), and pulls that
// page through the tenant's sync numbers up to the watermark, so no change is
// ever skipped.
package watermelon

import (
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/fieldcrm/fieldcrm/models"
)

// SchemaVersion is the version of the synced schema; it grows whenever a table
// or column is added, and apps send it as schema_version. Version 2 added the
// notifications table (the in-app inbox); an app migrating from 1 pulls with
// migration {"from": 1, "tables": ["notifications"]}. Version 3 added
// customers.external_ref (the number in the system customers were imported
// from); from 2: {"from": 2, "columns": [{"table": "customers", "columns":
// ["external_ref"]}]}. Version 4 named the server's times of every record
// server_created_at and server_updated_at, leaving created_at and updated_at
// to WatermelonDB's own conventions (see History and MigrationFrom).
const SchemaVersion = 4

// Column types, as WatermelonDB names them.
const (
	TypeString  = "string"
	TypeNumber  = "number"
	TypeBoolean = "boolean"
)

// Column is one column of a synced table.
type Column struct {
	Name       string `json:"name"`
	Type       string `json:"type"`
	IsOptional bool   `json:"isOptional,omitempty"`
	IsIndexed  bool   `json:"isIndexed,omitempty"`
	// JSON marks a string column holding a JSON-encoded value (an address, a
	// list of phones): the app parses it, and sends it back encoded the same way.
	JSON bool `json:"json,omitempty"`
	// Time marks a number column holding a time as milliseconds since 1970.
	Time bool `json:"time,omitempty"`
	// ReadOnly marks a column only the server writes (customer number, credit
	// rating…); a device's changes to it are ignored.
	ReadOnly bool `json:"readOnly,omitempty"`
	// Enum lists the values the server accepts in the column ("" among them
	// means it may be left empty); a value outside it rejects the row.
	Enum []string `json:"enum,omitempty"`
	// Required means a row without the column, or with it empty, is rejected
	// when the record is created.
	Required bool `json:"required,omitempty"`
	// JSONSchema describes the value a JSON column holds, once decoded, as a
	// JSON Schema (2020-12) object: its properties, their types, their
	// enumerations and required properties.
	JSONSchema map[string]any `json:"jsonSchema,omitempty"`

	goType reflect.Type
	// jsonName is the record's JSON name of the column (created_at is synced
	// as server_created_at).
	jsonName string
	// field is the index sequence of the column's struct field, omitEmpty
	// its json tag's option: where flatten reads the value.
	field     []int
	omitEmpty bool
}

// Table is one synced table and its columns (id, _status and _changed are
// WatermelonDB's own and not listed).
type Table struct {
	Name    string   `json:"name"`
	Columns []Column `json:"columns"`
}

// Schema is what GET /v1/sync/schema answers.
type Schema struct {
	Version int     `json:"version"`
	Tables  []Table `json:"tables"`
}

// indexed are the columns apps query by, indexed on the device.
var indexed = []string{"customer_id", "order_id", "owner_id", "assignee_id", "status", "number"}

// notSynced are fields that stay on the server: a device learns of a delete
// through the deleted list, not a column.
var notSynced = []string{"id", "deleted_at"}

// columnsOf derives a table's columns from its record type, the way
// encoding/json sees it.
func columnsOf(rec any) []Column {
	server := models.ServerFields(rec)
	rules := models.FieldRules(reflect.TypeOf(rec))
	var cols []Column
	var walk func(t reflect.Type, at []int)
	walk = func(t reflect.Type, at []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			name, options, _ := strings.Cut(tag, ",")
			if tag == "-" || (!f.IsExported() && !f.Anonymous) {
				continue
			}
			index := append(slices.Clone(at), i)
			if f.Anonymous && name == "" {
				walk(f.Type, index)
				continue
			}
			if slices.Contains(notSynced, name) {
				continue
			}
			c := columnFor(columnName(name), f.Type)
			c.jsonName = name
			c.IsIndexed = slices.Contains(indexed, name)
			c.ReadOnly = slices.Contains(server, name)
			if rule, ok := rules[name]; ok {
				c.Enum, c.Required = rule.Enum, rule.Required
			}
			if c.JSON {
				c.JSONSchema = jsonSchemaOf(f.Type, rules, name+".")
			}
			c.field, c.omitEmpty = index, slices.Contains(strings.Split(options, ","), "omitempty")
			cols = append(cols, c)
		}
	}
	walk(reflect.TypeOf(rec).Elem(), nil)
	return cols
}

// watermelonOwn are the columns WatermelonDB's conventions give a meaning of
// their own: a model's @readonly @date('created_at') and ('updated_at'),
// which WatermelonDB sets on the device when a record is created or changed
// there. The server's times of a record are synced under other names
// (server_created_at, server_updated_at), and a device's values of these are
// accepted in a push and ignored: the server keeps its own.
var watermelonOwn = []string{"created_at", "updated_at"}

// columnName is the synced name of a record's JSON field.
func columnName(jsonName string) string {
	if slices.Contains(watermelonOwn, jsonName) {
		return "server_" + jsonName
	}
	return jsonName
}

var timeType = reflect.TypeFor[time.Time]()

func columnFor(name string, t reflect.Type) Column {
	c := Column{Name: name, goType: t}
	if t.Kind() == reflect.Pointer {
		c.IsOptional = true
		t = t.Elem()
	}
	switch {
	case t == timeType:
		c.Type, c.Time = TypeNumber, true
	case t.Kind() == reflect.String:
		c.Type = TypeString
	case t.Kind() == reflect.Bool:
		c.Type = TypeBoolean
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Float64:
		c.Type = TypeNumber
	default: // structs, lists, maps
		c.Type, c.JSON = TypeString, true
	}
	return c
}
