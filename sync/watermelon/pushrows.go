package watermelon

import (
	"context"
	"sync"

	"github.com/fieldcrm/fieldcrm/internal/crm"
	"github.com/fieldcrm/fieldcrm/models"
)

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
	if err := t.pushCreates(ctx, a, from, tc.Created, parallel, out); err != nil {
		return err
	}
	rows := t.edits(tc)
	outcomes := make([]pushOutcome, len(rows))
	if err := t.pushSideBySide(ctx, a, from, rows, parallel, outcomes); err != nil {
		return err
	}
	for i, r := range rows {
		if r.alone {
			if err := t.pushOne(ctx, a, from, r, &outcomes[i]); err != nil {
				return err
			}
		}
	}
	// Outcomes in the push's order, as applying one row after another gives.
	for i := range outcomes {
		o := &outcomes[i]
		out.accepted = append(out.accepted, o.accepted...)
		out.conflicted = append(out.conflicted, o.conflicted...)
		out.rejected = append(out.rejected, o.rejected...)
	}
	return nil
}

// pushedRow is one updated row, or (row nil) one deleted id.
// alone means it is applied after the others, one after another in the
// push's order.
type pushedRow struct {
	row      map[string]any
	deleteID string
	alone    bool
}

// edits lists a table's updated rows and deleted ids, and marks alone those
// that must not be applied side by side with others: rows naming a record
// more than once, and rows whose write the CRM says reads the table's other
// records.
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
		rows = append(rows, pushedRow{row: row, alone: times[row["id"].(string)] > 1 || t.r.EditReadsOthers(writtenColumns(row))})
	}
	for _, id := range tc.Deleted {
		rows = append(rows, pushedRow{deleteID: id, alone: times[id] > 1})
	}
	return rows
}

// writtenColumns are the columns an updated row writes: those in _changed,
// or, without it, every column the row holds.
func writtenColumns(row map[string]any) []string {
	if changed := changedColumns(row); changed != nil {
		return changed
	}
	cols := make([]string, 0, len(row))
	for c := range row {
		cols = append(cols, c)
	}
	return cols
}

// pushSideBySide applies the rows not marked alone, up to parallel at a
// time, each into its outcome. The first error ends the push: it stops the
// rows not yet started, and is what the push answers.
func (t *records[R]) pushSideBySide(ctx context.Context, a models.Actor, from pushCursor, rows []pushedRow, parallel int, outcomes []pushOutcome) error {
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
					err = t.pushOne(ctx, a, from, rows[i], &outcomes[i])
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

// pushCreates hands a table's created rows to the CRM together: it applies
// them as one after another in the push's order (a customer's create claims
// the next customer number, and numbers follow the order the rep created
// them in), up to parallel under way at once (see crm ApplyDeviceCreates).
// Outcomes are filed in the push's order.
func (t *records[R]) pushCreates(ctx context.Context, a models.Actor, from pushCursor, rows []map[string]any, parallel int, out *pushOutcome) error {
	edits := make([]crm.DeviceEdit, 0, len(rows))
	bad := make([]error, len(rows))
	for i, row := range rows {
		values, err := writable(row, t.cols)
		if err != nil {
			bad[i] = err
			continue
		}
		edits = append(edits, crm.DeviceEdit{ID: row["id"].(string), Columns: values, Created: true, Base: from.base, Pulled: from.pulled})
	}
	outcomes, errs := t.r.ApplyDeviceCreates(ctx, a, edits, parallel)
	next := 0
	for i, row := range rows {
		id := row["id"].(string)
		if bad[i] != nil {
			if err := settle(bad[i], id, crm.DeviceOutcome{}, out); err != nil {
				return err
			}
			continue
		}
		if err := settle(errs[next], id, outcomes[next], out); err != nil {
			return err
		}
		next++
	}
	return nil
}

// pushOne hands one row to the CRM, once, and files its outcome.
func (t *records[R]) pushOne(ctx context.Context, a models.Actor, from pushCursor, r pushedRow, out *pushOutcome) error {
	if r.row == nil {
		o, err := t.r.ApplyDeviceDelete(ctx, a, r.deleteID, from.base)
		return settle(err, r.deleteID, o, out)
	}
	id := r.row["id"].(string)
	values, err := writable(r.row, t.cols)
	if err != nil {
		return settle(err, id, crm.DeviceOutcome{}, out)
	}
	e := crm.DeviceEdit{ID: id, Columns: values, Changed: changedColumns(r.row), Base: from.base, Pulled: from.pulled}
	o, err := t.r.ApplyDeviceEdit(ctx, a, e)
	return settle(err, id, o, out)
}

// settle files a pushed record under accepted, conflicted or rejected; errors
// that are not about the record end the push.
func settle(err error, id string, o crm.DeviceOutcome, out *pushOutcome) error {
	if err != nil {
		reason, isRule := rejectReason(err)
		if !isRule {
			return err
		}
		out.rejected = append(out.rejected, Rejection{ID: id, Reason: reason})
		return nil
	}
	if len(o.Conflicts) > 0 {
		out.conflicted = append(out.conflicted, id)
		return nil
	}
	out.accepted = append(out.accepted, id)
	return nil
}
