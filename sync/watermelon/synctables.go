package watermelon

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"time"

	"github.com/fieldcrm/fieldcrm/internal/crm"
	"github.com/fieldcrm/fieldcrm/models"
)

// table is one synced collection, whatever its record type.
type table interface {
	schema() Table
	// changes returns the flat records changed in (after, upTo], in number
	// order, narrowed as crm.Records.ChangesSince says.
	changes(ctx context.Context, a models.Actor, after, upTo int64, limit int, narrow crm.Narrowing) ([]change, error)
	// push applies a device's changes to the table (see Engine.Push).
	// parallel bounds the rows applied at the same time.
	push(ctx context.Context, a models.Actor, from pushCursor, tc PushTable, parallel int, res *PushResult) error
}

// collection is what the engine needs of one CRM collection of records R
// (a *crm.Records[R]): its changes for pulls, and one call per pushed row.
// The CRM decides what a row means for the record: conflicts and their
// policies, duplicate checks, what is recorded.
type collection[R any] interface {
	Collection() string
	ChangesSince(ctx context.Context, a models.Actor, after, upTo int64, limit int, narrow crm.Narrowing) ([]crm.Change[R], error)
	ApplyDeviceEdit(ctx context.Context, a models.Actor, e crm.DeviceEdit) (crm.DeviceOutcome, error)
	ApplyDeviceDelete(ctx context.Context, a models.Actor, id string, base int64) (crm.DeviceOutcome, error)
	// ApplyDeviceCreates applies rows pushed as created, as
	// ApplyDeviceEdit one after another in their order would.
	ApplyDeviceCreates(ctx context.Context, a models.Actor, edits []crm.DeviceEdit, parallel int) ([]crm.DeviceOutcome, []error)
	// EditReadsOthers reports whether an edit of these columns must be
	// applied in order with the push's other edits.
	EditReadsOthers(columns []string) bool
}

// change is one pulled record in flat form.
type change struct {
	seq    int64
	id     string
	table  string
	record map[string]any
	// createdSeq is the sync number of the record's creation; createdHere
	// says the pulling device created it (it has it, so it comes as updated).
	createdSeq  int64
	createdHere bool
	// gone means the device must not hold it: a tombstone, or a record the
	// user may not read; mayHold that the device may hold it (so must be told).
	gone, mayHold bool
}

type records[R any] struct {
	r    collection[R]
	cols []Column
	// serverOnly marks a table only the server writes (conflicts): every
	// pushed row of it is rejected.
	serverOnly bool
}

func newTable[R any](r collection[R]) *records[R] {
	return &records[R]{r: r, cols: columnsOf(new(R))}
}

// serverTable is a synced table devices read and never write.
func serverTable[R any](r collection[R]) *records[R] {
	t := newTable(r)
	t.serverOnly = true
	for i := range t.cols {
		t.cols[i].ReadOnly = true
	}
	return t
}

func (t *records[R]) schema() Table { return Table{Name: t.r.Collection(), Columns: t.cols} }

func (t *records[R]) changes(ctx context.Context, a models.Actor, after, upTo int64, limit int, narrow crm.Narrowing) ([]change, error) {
	found, err := t.r.ChangesSince(ctx, a, after, upTo, limit, narrow)
	if err != nil {
		return nil, err
	}
	out := make([]change, 0, len(found))
	for i := range found {
		m := models.MetaOf(&found[i].Record)
		c := change{seq: m.Seq, id: m.ID, table: t.r.Collection(), createdSeq: m.FieldSeqs["id"],
			createdHere: a.DeviceID != "" && m.FieldDevices["id"] == a.DeviceID,
			gone:        m.Deleted() || !found[i].Visible, mayHold: found[i].Visible || found[i].WasVisible}
		if !c.gone {
			if c.record, err = flatten(&found[i].Record, t.cols); err != nil {
				return nil, fmt.Errorf("flatten %s %s: %w", c.table, c.id, err)
			}
		}
		out = append(out, c)
	}
	return out, nil
}

// flatten turns a record into a WatermelonDB row: the columns by name, nested
// values JSON-encoded as strings, times as epoch milliseconds, numbers as
// float64: what the record's JSON form gives, read from its fields (a round
// trip through JSON was a fifth of a pull's time; TestFlattenIsTheJSONForm
// holds the two together).
func flatten(rec any, cols []Column) (map[string]any, error) {
	v := reflect.ValueOf(rec).Elem()
	row := make(map[string]any, len(cols)+1)
	row["id"] = models.MetaOf(rec).ID
	for _, c := range cols {
		f := v.FieldByIndex(c.field)
		if isNull(f) || (c.omitEmpty && isEmpty(f)) {
			row[c.Name] = emptyValue(c)
			continue
		}
		if f.Kind() == reflect.Pointer {
			f = f.Elem()
		}
		switch {
		case c.Time:
			row[c.Name] = f.Interface().(time.Time).UnixMilli()
		case c.JSON:
			raw, err := json.Marshal(f.Interface())
			if err != nil {
				return nil, fmt.Errorf("column %s: %w", c.Name, err)
			}
			row[c.Name] = string(raw)
		default:
			scalar, err := scalarOf(f)
			if err != nil {
				return nil, fmt.Errorf("column %s: %w", c.Name, err)
			}
			row[c.Name] = scalar
		}
	}
	return row, nil
}

// scalarOf is v as encoding/json decodes its JSON form into an any.
func scalarOf(v reflect.Value) (any, error) {
	switch v.Kind() {
	case reflect.String:
		return v.String(), nil
	case reflect.Bool:
		return v.Bool(), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return float64(v.Int()), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return float64(v.Uint()), nil
	case reflect.Float64:
		return v.Float(), nil
	}
	raw, err := json.Marshal(v.Interface())
	if err != nil {
		return nil, err
	}
	var scalar any
	err = json.Unmarshal(raw, &scalar)
	return scalar, err
}

// isNull tells a value encoding/json writes as null.
func isNull(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface, reflect.Map, reflect.Slice:
		return v.IsNil()
	}
	return false
}

// isEmpty tells a value a json omitempty option leaves out.
func isEmpty(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() == 0
	case reflect.Bool:
		return !v.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int() == 0
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return v.Uint() == 0
	case reflect.Float32, reflect.Float64:
		return v.Float() == 0
	case reflect.Pointer, reflect.Interface:
		return v.IsNil()
	}
	return false
}

// emptyValue is what a missing value reads as on the device: null for optional
// columns, the type's zero otherwise (WatermelonDB's own sanitizing rule).
func emptyValue(c Column) any {
	switch {
	case c.IsOptional:
		return nil
	case c.Type == TypeNumber:
		return 0
	case c.Type == TypeBoolean:
		return false
	case c.JSON:
		return "null"
	default:
		return ""
	}
}

// DefaultPushParallel bounds the rows of one table's push applied at the same
// time. Rows of different records are independent, and applied side by side
// their writes share SQLite commits (group commit) while their reads overlap:
// a push of 500 customer edits took 1.64 s one row after another and 0.80 s
// side by side, on the same machine in one sitting. 128 rather than 64: at
// 20,000 customers a push of 2,000 edits took 683-713 ms at 128 against
// 724-806 ms at 64 (four rounds each, alternating, two runs), and a push of
// 500 the same at both (230-248 ms against 227-299 ms).
const DefaultPushParallel = 128
