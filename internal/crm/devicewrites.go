package crm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/fieldcrm/fieldcrm/models"
)

// How a record a device pushed is applied. The sync engine decodes and checks
// the protocol's rows; what a row means for the record (which columns meet
// someone else's change, how each column's conflict is settled, what is kept
// in the conflicts table, when the device must receive the record again) is
// decided here, in one call per row.

// DeviceEdit is one created or updated record a device pushed, its columns
// already in the record's JSON form.
type DeviceEdit struct {
	// ID is the record's id; for a record the device created, its own.
	ID string
	// Columns are the values the row holds for fields a device may write,
	// by JSON name.
	Columns map[string]json.RawMessage
	// Changed names the columns the device changed (WatermelonDB's
	// _changed); nil means all of Columns. An update of a stored record
	// writes only these; a create writes all of Columns.
	Changed []string
	// Created says the device sent the record as created.
	Created bool
	// Base is the cursor the edit is judged from: a column someone else
	// changed after it is a conflict.
	Base int64
	// Pulled is the cursor the device last pulled from.
	Pulled int64
}

// DeviceOutcome is what became of a pushed record that was applied.
type DeviceOutcome struct {
	// Conflicts are the columns (or, for "*", the whole record) where the
	// device's change met someone else's, as recorded in the conflicts table.
	Conflicts []models.Conflict
}

// columnMerge settles a column a device changed that someone else changed
// too since the device's base: it returns the value to store, and the policy
// and the side kept, for the conflict's record.
type columnMerge func(server, device json.RawMessage) (value json.RawMessage, policy, kept string)

// lastWriterWins keeps the device's value: of two changes, the server
// received the device's last.
func lastWriterWins(_, device json.RawMessage) (json.RawMessage, string, string) {
	return device, models.PolicyLastWriter, "device"
}

// unionOfLists keeps every entry of both lists of strings, the server's
// first: neither side's tag disappears.
func unionOfLists(server, device json.RawMessage) (json.RawMessage, string, string) {
	var both, more []string
	_ = json.Unmarshal(server, &both)
	_ = json.Unmarshal(device, &more)
	for _, s := range more {
		if !slices.Contains(both, s) {
			both = append(both, s)
		}
	}
	out, _ := json.Marshal(both)
	return out, models.PolicyUnion, "union"
}

// ConflictPolicy names the policy that settles a conflict on column: the
// collection's own for that column, or last writer wins.
func (r *Records[R]) ConflictPolicy(column string) string {
	_, policy, _ := r.mergeOf(column)(nil, nil)
	return policy
}

func (r *Records[R]) mergeOf(column string) columnMerge {
	if m, ok := r.h.merge[column]; ok {
		return m
	}
	return lastWriterWins
}

// EditReadsOthers reports whether an edit of these columns reads the
// collection's other records when it is written (a customer's phones and
// names make the duplicate keys checked against the tenant's other
// customers), so must be applied in order with the other edits of a push,
// never side by side: two rows of one push giving two customers one phone
// must see each other.
func (r *Records[R]) EditReadsOthers(columns []string) bool {
	return slices.ContainsFunc(columns, func(c string) bool { return slices.Contains(r.h.serial, c) })
}

// ApplyDeviceEdit applies a record a device pushed, as the device's user.
//
// A created record whose id is stored already (a push sent again) is applied
// as an update with all its columns; an updated record that is not stored (its
// create never reached the server) is created, as WatermelonDB expects. Ledgers,
// whose records cannot be updated, answer a create sent again themselves (see
// hooks.same).
//
// An update writes the changed columns column by column: a column nobody else
// changed since e.Base is written; one changed by someone else, to another
// value, is a conflict settled by the column's policy and recorded. An edit of
// a deleted record is not applied: the delete stands and the edit is recorded.
// When the stored record ends up unlike what the device sent (merged,
// normalized, masked) with no new version to carry it, it is given one, so the
// device pulls it again.
//
// Errors that are about the record (models.ValidationError, ForbiddenError,
// ErrNotFound, ErrConflict) refuse this record alone and leave it unchanged;
// any other error is a fault.
func (r *Records[R]) ApplyDeviceEdit(ctx context.Context, a models.Actor, e DeviceEdit) (DeviceOutcome, error) {
	return r.applyDeviceEdit(ctx, a, e, 0)
}

// applyDeviceEdit is ApplyDeviceEdit; a create it makes takes number
// sequence seq, if not 0 (see createWrite).
func (r *Records[R]) applyDeviceEdit(ctx context.Context, a models.Actor, e DeviceEdit, seq int64) (DeviceOutcome, error) {
	if e.Created && r.h.same != nil {
		return DeviceOutcome{}, r.createFromDevice(ctx, a, e, seq)
	}
	if e.Created && seq != 0 {
		// Found new when it took its number (see ApplyDeviceCreates).
		return DeviceOutcome{}, r.createFromDevice(ctx, a, e, seq)
	}
	if e.Created {
		// Checked first: a customer's create claims a customer number, which
		// a create sent again must not waste.
		exists, err := r.Exists(ctx, a.TenantID, e.ID)
		if err != nil {
			return DeviceOutcome{}, err
		}
		if !exists {
			return DeviceOutcome{}, r.createFromDevice(ctx, a, e, 0)
		}
	}
	values := e.Columns
	if !e.Created && e.Changed != nil {
		values = make(map[string]json.RawMessage, len(e.Changed))
		for _, c := range e.Changed {
			if v, ok := e.Columns[c]; ok {
				values[c] = v
			}
		}
	}
	// An update reads the record once: the write itself finds out whether
	// it exists, and most pushed rows are updates of stored records.
	var found []models.Conflict
	var seqBefore int64
	stored, err := r.Update(ctx, a, e.ID, 0, func(dst any) error {
		rec := dst.(*R)
		seqBefore = meta(rec).Seq
		merged, conflicts := r.mergeDeviceColumns(a, e.Base, rec, values)
		found = conflicts // the write may be retried: keep the last attempt's
		return decodeColumns(rec, merged)
	})
	if err == nil {
		if err := r.resendIfUnlike(ctx, a, &stored, seqBefore, e.Pulled, values); err != nil {
			return DeviceOutcome{}, err
		}
		return r.recordConflicts(ctx, a, found)
	}
	if !errors.Is(err, models.ErrNotFound) {
		return DeviceOutcome{}, err
	}
	rec, gerr := r.Get(ctx, a, e.ID)
	switch {
	case gerr == nil && meta(&rec).Deleted():
		// An edit that met a delete: the delete stands, the edit is kept.
		device, _ := json.Marshal(values)
		c := r.conflict(a, meta(&rec), "*", "null", string(device))
		c.Policy, c.Kept = models.PolicyDeleteWins, "server"
		return r.recordConflicts(ctx, a, []models.Conflict{c})
	case errors.Is(gerr, models.ErrNotFound):
		exists, xerr := r.Exists(ctx, a.TenantID, e.ID)
		if xerr != nil {
			return DeviceOutcome{}, xerr
		}
		if !exists { // updated on a device that never pushed its create
			return DeviceOutcome{}, r.createFromDevice(ctx, a, e, 0)
		}
	}
	return DeviceOutcome{}, err
}

// ApplyDeviceDelete turns a record a device deleted into a tombstone. A delete
// of a record the user cannot see, or that is gone already, is accepted and
// changes nothing, as WatermelonDB expects. A delete that meets someone else's
// change made after base stands, and the record as it was is kept in the
// conflicts table. Errors are classified as ApplyDeviceEdit's.
func (r *Records[R]) ApplyDeviceDelete(ctx context.Context, a models.Actor, id string, base int64) (DeviceOutcome, error) {
	rec, err := r.Get(ctx, a, id)
	if errors.Is(err, models.ErrNotFound) || (err == nil && meta(&rec).Deleted()) {
		return DeviceOutcome{}, nil
	}
	if err != nil {
		return DeviceOutcome{}, err
	}
	m := meta(&rec)
	raced := false
	for col, seq := range m.FieldSeqs {
		if seq > base && m.FieldDevices[col] != a.DeviceID {
			raced = true
		}
	}
	if err := r.Delete(ctx, a, id, 0); err != nil {
		return DeviceOutcome{}, err
	}
	if !raced {
		return DeviceOutcome{}, nil
	}
	server, _ := json.Marshal(rec)
	c := r.conflict(a, m, "*", string(server), "null")
	c.Policy = models.PolicyDeleteWins
	return r.recordConflicts(ctx, a, []models.Conflict{c})
}

// createFromDevice creates the record under the device's id with every column
// it sent. Customers matching others are created flagged, never refused: the
// rep was offline.
func (r *Records[R]) createFromDevice(ctx context.Context, a models.Actor, e DeviceEdit, seq int64) error {
	var in R
	if err := decodeColumns(&in, e.Columns); err != nil {
		return err
	}
	_, err := r.createWrite(ctx, a, in, true, e.ID, seq)
	return err
}

// mergeDeviceColumns decides, column by column, what a device's values write
// onto the stored record rec, and which columns conflict: changed since base
// by someone other than this device, to a different value.
func (r *Records[R]) mergeDeviceColumns(a models.Actor, base int64, rec *R, values map[string]json.RawMessage) (map[string]json.RawMessage, []models.Conflict) {
	m := meta(rec)
	current := map[string]json.RawMessage{}
	raw, _ := json.Marshal(rec)
	_ = json.Unmarshal(raw, &current)
	merged := make(map[string]json.RawMessage, len(values))
	var conflicts []models.Conflict
	for col, dev := range values {
		srv := current[col]
		merged[col] = dev
		if jsonEqual(srv, dev) || m.FieldSeqs[col] <= base || m.FieldDevices[col] == a.DeviceID {
			continue
		}
		c := r.conflict(a, m, col, string(srv), string(dev))
		merged[col], c.Policy, c.Kept = r.mergeOf(col)(srv, dev)
		conflicts = append(conflicts, c)
	}
	return merged, conflicts
}

// conflict describes a device's value of column col meeting the stored
// record m's; the policy fields are the caller's to set.
func (r *Records[R]) conflict(a models.Actor, m *models.Meta, col, server, device string) models.Conflict {
	of := *m
	return models.Conflict{
		Table: r.coll, RecordID: m.ID, Column: col,
		ServerValue: server, ServerBy: m.UpdatedBy, ServerAt: m.UpdatedAt,
		DeviceValue: device, DeviceBy: a.UserID, DeviceID: a.DeviceID,
		Policy: models.PolicyLastWriter, Kept: "device", Of: &of,
	}
}

// recordConflicts stores the conflicts an applied device change met, as the
// server's records: no device holds them yet, so they reach every device,
// the pushing one too, as created.
func (r *Records[R]) recordConflicts(ctx context.Context, a models.Actor, found []models.Conflict) (DeviceOutcome, error) {
	server := a
	server.DeviceID = ""
	out := DeviceOutcome{Conflicts: make([]models.Conflict, 0, len(found))}
	for _, c := range found {
		stored, err := r.svc.Conflicts.createAs(ctx, server, c, false, models.NewID())
		if err != nil {
			// %v, not %w: the device's change is stored, so this is a fault
			// of the server, never a refusal of the device's record.
			return DeviceOutcome{}, fmt.Errorf("record conflict on %s %s: %v", c.Table, c.RecordID, err)
		}
		out.Conflicts = append(out.Conflicts, stored)
	}
	return out, nil
}

// resendIfUnlike makes devices pull a record again when what was stored
// differs from what the device pushed (a merged list, a normalized phone, a
// masked number) but the write changed nothing, so gave it no new sync
// number: the device would otherwise keep its own value for good.
func (r *Records[R]) resendIfUnlike(ctx context.Context, a models.Actor, stored *R, seqBefore, pulled int64, pushed map[string]json.RawMessage) error {
	if seq := meta(stored).Seq; seq != seqBefore || seq > pulled {
		return nil // the device's next pull brings it: written now, or after its last pull
	}
	raw, err := json.Marshal(stored)
	if err != nil {
		return fmt.Errorf("compare %s %s with the device's: %w", r.coll, meta(stored).ID, err)
	}
	var now map[string]json.RawMessage
	if err := json.Unmarshal(raw, &now); err != nil {
		return fmt.Errorf("compare %s %s with the device's: %w", r.coll, meta(stored).ID, err)
	}
	for col, dev := range pushed {
		if !r.sameValue(col, now[col], dev) {
			return r.resend(ctx, a, meta(stored).ID)
		}
	}
	return nil
}

// sameValue compares a stored and a pushed value of field col: times as
// instants to the millisecond (what a device holds), whatever their zone and
// precision in JSON; the rest as JSON.
func (r *Records[R]) sameValue(col string, stored, pushed json.RawMessage) bool {
	if t := r.fields[col]; t == timeType || t == reflect.PointerTo(timeType) {
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

var timeType = reflect.TypeFor[time.Time]()

// fieldTypes maps the JSON names of R's fields (embedded structs' included)
// to their types.
func fieldTypes[R any]() map[string]reflect.Type {
	out := map[string]reflect.Type{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			name, _, _ := strings.Cut(tag, ",")
			switch {
			case tag == "-" || (!f.IsExported() && !f.Anonymous):
			case f.Anonymous && name == "":
				walk(f.Type)
			default:
				out[name] = f.Type
			}
		}
	}
	walk(reflect.TypeFor[R]())
	return out
}

// deviceWritable reports whether a device may write field col: a field of the
// record that the server does not keep for itself.
func (r *Records[R]) deviceWritable(col string) bool {
	if _, ok := r.fields[col]; !ok || col == "id" || col == "deleted_at" {
		return false
	}
	return !slices.Contains(models.ServerFields(new(R)), col)
}

// decodeColumns writes JSON values onto a record. Each value replaces the
// field whole (a map is not merged into), as a pushed column is the device's
// value. A value that does not fit its field is the record's validation error.
func decodeColumns[R any](dst *R, values map[string]json.RawMessage) error {
	nulls := make(map[string]json.RawMessage, len(values))
	for k := range values {
		nulls[k] = json.RawMessage("null")
	}
	for _, v := range []map[string]json.RawMessage{nulls, values} {
		raw, err := json.Marshal(v)
		if err != nil {
			return &models.ValidationError{Fields: []models.FieldError{{Field: "record", Message: "a column's value is not JSON: " + err.Error()}}}
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			return &models.ValidationError{Fields: []models.FieldError{{Field: "record", Message: "a column's value does not fit: " + err.Error()}}}
		}
	}
	return nil
}

// jsonEqual compares two JSON values by meaning (key order and spacing
// aside).
func jsonEqual(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return bytes.Equal(a, b)
	}
	ax, _ := json.Marshal(x)
	by, _ := json.Marshal(y)
	return bytes.Equal(ax, by)
}
