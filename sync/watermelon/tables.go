package watermelon

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/fieldcrm/fieldcrm/models"
	"github.com/fieldcrm/fieldcrm/sync/crm"
)

// table is one synced collection, whatever its record type.
type table interface {
	schema() Table
	// changes returns the flat records changed in (after, upTo], in number order.
	changes(ctx context.Context, a models.Actor, after, upTo int64, limit int) ([]change, error)
}

// change is one pulled record in flat form.
type change struct {
	seq     int64
	id      string
	table   string
	record  map[string]any
	created bool
	// gone means the device must not hold it: a tombstone, or a record the
	// user may not read; mayHold that the device may hold it (so must be told).
	gone, mayHold bool
}

type records[R any] struct {
	r    *crm.Records[R]
	cols []Column
}

func newTable[R any](r *crm.Records[R]) *records[R] {
	return &records[R]{r: r, cols: columnsOf(new(R))}
}

func (t *records[R]) schema() Table { return Table{Name: t.r.Collection(), Columns: t.cols} }

func (t *records[R]) changes(ctx context.Context, a models.Actor, after, upTo int64, limit int) ([]change, error) {
	found, err := t.r.ChangesSince(ctx, a, after, upTo, limit)
	if err != nil {
		return nil, err
	}
	out := make([]change, 0, len(found))
	for i := range found {
		m := any(&found[i].Record).(interface{ Header() *models.Meta }).Header()
		c := change{seq: m.Seq, id: m.ID, table: t.r.Collection(), created: found[i].Created,
			gone: m.Deleted() || !found[i].Visible, mayHold: found[i].Visible || found[i].WasVisible}
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
// values JSON-encoded as strings, times as epoch milliseconds.
func flatten(rec any, cols []Column) (map[string]any, error) {
	raw, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, err
	}
	row := make(map[string]any, len(cols)+1)
	var id string
	_ = json.Unmarshal(fields["id"], &id)
	row["id"] = id
	for _, c := range cols {
		v, present := fields[c.Name]
		switch {
		case !present || string(v) == "null":
			row[c.Name] = emptyValue(c)
		case c.Time:
			var t time.Time
			if err := json.Unmarshal(v, &t); err != nil {
				return nil, fmt.Errorf("column %s: %w", c.Name, err)
			}
			row[c.Name] = t.UnixMilli()
		case c.JSON:
			row[c.Name] = string(v)
		default:
			var scalar any
			if err := json.Unmarshal(v, &scalar); err != nil {
				return nil, fmt.Errorf("column %s: %w", c.Name, err)
			}
			row[c.Name] = scalar
		}
	}
	return row, nil
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
