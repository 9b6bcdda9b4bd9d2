package watermelon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/fieldcrm/fieldcrm/internal/crm"
	"github.com/fieldcrm/fieldcrm/models"
)

// table is one synced collection, whatever its record type.
type table interface {
	schema() Table
	// changes returns the flat records changed in (after, upTo], in number order.
	changes(ctx context.Context, a models.Actor, after, upTo int64, limit int) ([]change, error)
	// push applies a device's changes to the table (see Engine.Push).
	// parallel bounds the rows applied at the same time.
	push(ctx context.Context, a models.Actor, from pushCursor, tc PushTable, parallel int, res *PushResult) error
	// revert restores the value a conflict's policy did not keep.
	revert(ctx context.Context, a models.Actor, c models.Conflict) error
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
	r    *crm.Records[R]
	cols []Column
	// serial are the columns whose write reads the table's other records, so
	// that pushed rows writing them are applied one after another (see push).
	serial []string
	// serverOnly marks a table only the server writes (conflicts): every
	// pushed row of it is rejected.
	serverOnly bool
}

func newTable[R any](r *crm.Records[R]) *records[R] {
	return &records[R]{r: r, cols: columnsOf(new(R))}
}

// serverTable is a synced table devices read and never write.
func serverTable[R any](r *crm.Records[R]) *records[R] {
	t := newTable(r)
	t.serverOnly = true
	for i := range t.cols {
		t.cols[i].ReadOnly = true
	}
	return t
}

func (t *records[R]) schema() Table { return Table{Name: t.r.Collection(), Columns: t.cols} }

func (t *records[R]) changes(ctx context.Context, a models.Actor, after, upTo int64, limit int) ([]change, error) {
	found, err := t.r.ChangesSince(ctx, a, after, upTo, limit)
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

// DefaultPushParallel bounds the rows of one table's push applied at the same
// time. Rows of different records are independent, and applied side by side
// their writes share SQLite commits (group commit) while their reads overlap:
// a push of 500 customer edits took 1.64 s one row after another and 0.80 s
// side by side, on the same machine in one sitting. 128 rather than 64: at
// 20,000 customers a push of 2,000 edits took 683-713 ms at 128 against
// 724-806 ms at 64 (four rounds each, alternating, two runs), and a push of
// 500 the same at both (230-248 ms against 227-299 ms).
const DefaultPushParallel = 128

// pushCursor is where a pushing device stands: base is the cursor its
// conflicts are judged from (see Engine.pushBase), pulled the cursor it sent.
type pushCursor struct{ base, pulled int64 }

func (t *records[R]) push(ctx context.Context, a models.Actor, from pushCursor, tc PushTable, parallel int, res *PushResult) error {
	out := res.outcome(t.r.Collection())
	if t.serverOnly {
		reason := t.r.Collection() + " are written by the server alone; resolve a conflict with POST /v1/conflicts/{id}/resolve"
		for _, rows := range [][]map[string]any{tc.Created, tc.Updated} {
			for _, row := range rows {
				out.rejected = append(out.rejected, Rejection{ID: row["id"].(string), Reason: reason})
			}
		}
		for _, id := range tc.Deleted {
			out.rejected = append(out.rejected, Rejection{ID: id, Reason: reason})
		}
		return nil
	}
	// Creates one after another: a customer's create claims the next customer
	// number, and numbers should follow the order the rep created them in.
	for _, row := range tc.Created {
		if err := t.pushRow(ctx, a, from, row, true, res, out); err != nil {
			return err
		}
	}
	rows := t.edits(tc)
	outcomes := make([]rowOutcome, len(rows))
	if err := t.pushSideBySide(ctx, a, from, rows, parallel, outcomes); err != nil {
		return err
	}
	for i, r := range rows {
		if !r.alone {
			continue
		}
		o := &outcomes[i]
		if err := t.pushOne(ctx, a, from, r, &o.res, &o.out); err != nil {
			return err
		}
	}
	// Outcomes in the push's order, as applying one row after another gives.
	for i := range outcomes {
		o := &outcomes[i]
		out.accepted = append(out.accepted, o.out.accepted...)
		out.conflicted = append(out.conflicted, o.out.conflicted...)
		out.rejected = append(out.rejected, o.out.rejected...)
		res.conflicts = append(res.conflicts, o.res.conflicts...)
	}
	return nil
}

// pushedRow is one updated row, or (row nil) one deleted id. alone means
// it is applied after the others, one after another in the push's order.
type pushedRow struct {
	row      map[string]any
	deleteID string
	alone    bool
}

// rowOutcome is what became of one pushedRow.
type rowOutcome struct {
	res PushResult
	out pushOutcome
}

func (t *records[R]) pushOne(ctx context.Context, a models.Actor, from pushCursor, r pushedRow, res *PushResult, out *pushOutcome) error {
	if r.row == nil {
		return t.pushDelete(ctx, a, from, r.deleteID, res, out)
	}
	return t.pushRow(ctx, a, from, r.row, false, res, out)
}

// edits lists a table's updated rows and deleted ids, and marks alone those
// that must not be applied side by side with others: rows naming a record
// more than once, and rows writing a column whose write reads the table's
// other records (t.serial).
func (t *records[R]) edits(tc PushTable) []pushedRow {
	times := map[string]int{}
	for _, row := range tc.Updated {
		times[row["id"].(string)]++
	}
	for _, id := range tc.Deleted {
		times[id]++
	}
	rows := make([]pushedRow, 0, len(tc.Updated)+len(tc.Deleted))
	for _, row := range tc.Updated {
		rows = append(rows, pushedRow{row: row, alone: times[row["id"].(string)] > 1 || t.writesSerial(row)})
	}
	for _, id := range tc.Deleted {
		rows = append(rows, pushedRow{deleteID: id, alone: times[id] > 1})
	}
	return rows
}

// writesSerial reports whether an updated row writes one of t.serial.
func (t *records[R]) writesSerial(row map[string]any) bool {
	if changed := changedColumns(row); changed != nil {
		return slices.ContainsFunc(changed, func(c string) bool { return slices.Contains(t.serial, c) })
	}
	for _, c := range t.serial {
		if _, ok := row[c]; ok {
			return true
		}
	}
	return false
}

// pushSideBySide applies the rows not marked alone, up to parallel at a
// time, each into its outcome. The first error ends the push: it stops the
// rows not yet started, and is what the push answers.
func (t *records[R]) pushSideBySide(ctx context.Context, a models.Actor, from pushCursor, rows []pushedRow, parallel int, outcomes []rowOutcome) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int, len(rows))
	for i, r := range rows {
		if !r.alone {
			next <- i
		}
	}
	close(next)
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	for range min(max(parallel, 1), len(next)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				err := ctx.Err()
				if err == nil {
					err = t.pushOne(ctx, a, from, rows[i], &outcomes[i].res, &outcomes[i].out)
				}
				if err != nil {
					once.Do(func() { first = err; cancel() })
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// pushRow applies one created or updated row. A created row whose id exists
// (a retried push) and an updated row whose record does not (WatermelonDB's
// own rule) are handled as the other kind, but for ledgers, whose records
// cannot be updated: the CRM answers a create sent again itself. An update,
// by far the most common row, reads the record once: the write itself finds
// out whether it exists.
func (t *records[R]) pushRow(ctx context.Context, a models.Actor, from pushCursor, row map[string]any, created bool, res *PushResult, out *pushOutcome) error {
	id := row["id"].(string)
	if created && t.r.CreatesAgain() {
		return t.create(ctx, a, row, res, out)
	}
	if created {
		// Checked first: a customer's create claims a customer number, which
		// a retried push must not waste.
		exists, err := t.r.Exists(ctx, a.TenantID, id)
		if err != nil || !exists {
			if err != nil {
				return err
			}
			return t.create(ctx, a, row, res, out)
		}
	}
	// An update takes only the columns in _changed; a create sent again, all.
	var only []string
	if !created {
		only = changedColumns(row)
	}
	values, err := writable(row, t.cols, only)
	if err != nil {
		return settle(err, id, nil, res, out)
	}
	var found []models.Conflict
	var seqBefore int64
	stored, err := t.r.Update(ctx, a, id, 0, func(dst any) error {
		seqBefore = models.MetaOf(dst).Seq
		merged, conflicts := t.merge(a, from.base, dst, values)
		found = conflicts // the write may be retried: keep the last attempt's
		return decodeOnto(dst, merged)
	})
	if err == nil {
		err = t.resendIfDifferent(ctx, a, &stored, seqBefore, from.pulled, values)
	}
	if !errors.Is(err, models.ErrNotFound) {
		return settle(err, id, found, res, out)
	}
	rec, gerr := t.r.Get(ctx, a, id)
	switch {
	case gerr == nil && models.MetaOf(&rec).Deleted():
		// An edit that met a delete: the delete stands, the edit is kept.
		device, _ := json.Marshal(values)
		c := t.conflict(a, models.MetaOf(&rec), "*", "null", string(device))
		c.Policy, c.Kept = models.PolicyDeleteWins, "server"
		return settle(nil, id, []models.Conflict{c}, res, out)
	case errors.Is(gerr, models.ErrNotFound):
		exists, xerr := t.r.Exists(ctx, a.TenantID, id)
		if xerr != nil {
			return xerr
		}
		if !exists { // updated on a device that never pushed its create
			return t.create(ctx, a, row, res, out)
		}
	}
	return settle(err, id, nil, res, out)
}

// resendIfDifferent makes devices pull a record again when what was stored
// differs from what the device pushed (a merged list, a normalized phone, a
// masked number) but the write changed nothing, so gave it no new sync
// number: the device would otherwise keep its own value for good.
func (t *records[R]) resendIfDifferent(ctx context.Context, a models.Actor, stored *R, seqBefore, pulled int64, pushed map[string]json.RawMessage) error {
	if seq := models.MetaOf(stored).Seq; seq != seqBefore || seq > pulled {
		return nil // the device's next pull brings it: written now, or after its last pull
	}
	raw, err := json.Marshal(stored)
	if err != nil {
		return err
	}
	var now map[string]json.RawMessage
	if err := json.Unmarshal(raw, &now); err != nil {
		return err
	}
	for col, dev := range pushed {
		if !sameValue(t.column(col), now[col], dev) {
			return t.r.Resend(ctx, a, models.MetaOf(stored).ID)
		}
	}
	return nil
}

func (t *records[R]) column(name string) Column {
	for _, c := range t.cols {
		if c.Name == name {
			return c
		}
	}
	return Column{Name: name}
}

// sameValue compares a stored and a pushed value of column c: times as
// instants, whatever their zone and precision in JSON; the rest as JSON.
func sameValue(c Column, stored, pushed json.RawMessage) bool {
	if c.Time {
		var x, y *time.Time
		if json.Unmarshal(stored, &x) == nil && json.Unmarshal(pushed, &y) == nil {
			return (x == nil && y == nil) || (x != nil && y != nil && x.UnixMilli() == y.UnixMilli())
		}
	}
	if len(stored) == 0 {
		stored = json.RawMessage("null")
	}
	return jsonEqual(stored, pushed)
}

// create stores a row under the device's id with every column it has.
func (t *records[R]) create(ctx context.Context, a models.Actor, row map[string]any, res *PushResult, out *pushOutcome) error {
	id := row["id"].(string)
	values, err := writable(row, t.cols, nil)
	if err != nil {
		return settle(err, id, nil, res, out)
	}
	_, err = t.r.CreateFrom(ctx, a, id, func(dst any) error { return decodeOnto(dst, values) })
	return settle(err, id, nil, res, out)
}

// merge decides, column by column, what a pushed row writes onto the stored
// record dst, and which columns conflict: changed since the device's base
// cursor by someone other than this device, to a different value.
func (t *records[R]) merge(a models.Actor, base int64, dst any, values map[string]json.RawMessage) (map[string]json.RawMessage, []models.Conflict) {
	m := models.MetaOf(dst)
	current := map[string]json.RawMessage{}
	raw, _ := json.Marshal(dst)
	_ = json.Unmarshal(raw, &current)
	merged := map[string]json.RawMessage{}
	var conflicts []models.Conflict
	for col, dev := range values {
		srv := current[col]
		merged[col] = dev
		if jsonEqual(srv, dev) || m.FieldSeqs[col] <= base || m.FieldDevices[col] == a.DeviceID {
			continue
		}
		c := t.conflict(a, m, col, string(srv), string(dev))
		if col == "tags" {
			merged[col] = unionJSON(srv, dev)
			c.Policy, c.Kept = models.PolicyUnion, "union"
		}
		conflicts = append(conflicts, c)
	}
	return merged, conflicts
}

func (t *records[R]) conflict(a models.Actor, m *models.Meta, col, server, device string) models.Conflict {
	of := *m
	return models.Conflict{
		Table: t.r.Collection(), RecordID: m.ID, Column: col,
		ServerValue: server, ServerBy: m.UpdatedBy, ServerAt: m.UpdatedAt,
		DeviceValue: device, DeviceBy: a.UserID, DeviceID: a.DeviceID,
		Policy: models.PolicyLastWriter, Kept: "device", Of: &of,
	}
}

// pushDelete tombstones a record. A delete of a record the device cannot see
// or that is already gone is ignored, as WatermelonDB expects; a delete that
// meets someone else's recent edit stands, and the edit is recorded.
func (t *records[R]) pushDelete(ctx context.Context, a models.Actor, from pushCursor, id string, res *PushResult, out *pushOutcome) error {
	rec, err := t.r.Get(ctx, a, id)
	if errors.Is(err, models.ErrNotFound) || (err == nil && models.MetaOf(&rec).Deleted()) {
		out.accepted = append(out.accepted, id)
		return nil
	}
	if err != nil {
		return err
	}
	m := models.MetaOf(&rec)
	raced := false
	for col, seq := range m.FieldSeqs {
		if seq > from.base && m.FieldDevices[col] != a.DeviceID {
			raced = true
		}
	}
	if err := t.r.Delete(ctx, a, id, 0); err != nil {
		return settle(err, id, nil, res, out)
	}
	var found []models.Conflict
	if raced {
		server, _ := json.Marshal(rec)
		c := t.conflict(a, m, "*", string(server), "null")
		c.Policy = models.PolicyDeleteWins
		found = append(found, c)
	}
	return settle(nil, id, found, res, out)
}

func header[R any](rec *R) *models.Meta {
	return any(rec).(interface{ Header() *models.Meta }).Header()
}

// settle files a pushed record under accepted, conflicted or rejected; errors
// that are not about the record end the push.
func settle(err error, id string, conflicts []models.Conflict, res *PushResult, out *pushOutcome) error {
	if err != nil {
		reason, isRule := rejectReason(err)
		if !isRule {
			return err
		}
		out.rejected = append(out.rejected, Rejection{ID: id, Reason: reason})
		return nil
	}
	if len(conflicts) > 0 {
		out.conflicted = append(out.conflicted, id)
		res.conflicts = append(res.conflicts, conflicts...)
		return nil
	}
	out.accepted = append(out.accepted, id)
	return nil
}

// decodeOnto writes JSON values onto a record. Each value replaces the field
// whole (a map is not merged into), as a pushed column is the device's value.
func decodeOnto(dst any, values map[string]json.RawMessage) error {
	nulls := map[string]json.RawMessage{}
	for k := range values {
		nulls[k] = json.RawMessage("null")
	}
	for _, v := range []map[string]json.RawMessage{nulls, values} {
		raw, err := json.Marshal(v)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			return &models.ValidationError{Fields: []models.FieldError{{Field: "record", Message: "a column's value does not fit: " + err.Error()}}}
		}
	}
	return nil
}

// unionJSON unions two JSON lists of strings, keeping the server's order first.
func unionJSON(a, b json.RawMessage) json.RawMessage {
	var x, y []string
	_ = json.Unmarshal(a, &x)
	_ = json.Unmarshal(b, &y)
	for _, s := range y {
		if !slices.Contains(x, s) {
			x = append(x, s)
		}
	}
	out, _ := json.Marshal(x)
	return out
}

// revert restores the value a conflict's policy did not keep, through the
// record's ordinary write path with the resolver's rights: only a column a
// device may write, never on an append-only table, validated as any edit.
func (t *records[R]) revert(ctx context.Context, a models.Actor, c models.Conflict) error {
	if c.Column == "*" {
		// An edit lost to a delete (kept: server): back, with the edit; a
		// delete that beat an edit: back as it was.
		var apply func(dst any) error
		if c.Kept == "server" {
			var values map[string]json.RawMessage
			if err := json.Unmarshal([]byte(c.DeviceValue), &values); err != nil {
				return fmt.Errorf("conflict %s holds no edit: %w", c.ID, err)
			}
			for col := range values {
				if col := t.column(col); col.Type == "" || col.ReadOnly {
					delete(values, col.Name)
				}
			}
			apply = func(dst any) error { return decodeOnto(dst, values) }
		}
		_, err := t.r.Restore(ctx, a, c.RecordID, apply)
		return err
	}
	col := t.column(c.Column)
	if col.Type == "" || col.ReadOnly {
		return &models.ValidationError{Fields: []models.FieldError{{Field: "column",
			Message: fmt.Sprintf("%s.%s is written by the server alone; it cannot be reverted", t.r.Collection(), c.Column)}}}
	}
	_, err := t.r.Update(ctx, a, c.RecordID, 0, func(dst any) error {
		return decodeOnto(dst, map[string]json.RawMessage{c.Column: json.RawMessage(c.ServerValue)})
	})
	return err
}
