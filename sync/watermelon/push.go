package watermelon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/fieldcrm/fieldcrm/internal/crm"
	"github.com/fieldcrm/fieldcrm/models"
)

// MaxPushRecords bounds the records of one push (created, updated and deleted
// together); the body is also bounded by the server's body limit.
const MaxPushRecords = 5000

// PushTable is one table's part of a push, in WatermelonDB's shape.
type PushTable struct {
	Created []map[string]any `json:"created"`
	Updated []map[string]any `json:"updated"`
	Deleted []string         `json:"deleted"`
}

// PushRequest is the body of a push.
type PushRequest struct {
	Changes map[string]PushTable `json:"changes"`
}

// Rejection is a pushed record the server did not apply, and why.
type Rejection struct {
	ID     string `json:"id"`
	Reason string `json:"reason"`
}

// PushResult says what became of each pushed record. WatermelonDB reads only
// experimentalRejectedIds (it keeps those records marked as changed locally);
// the rest is for apps and logs.
type PushResult struct {
	// Accepted were applied as sent.
	Accepted map[string][]string `json:"accepted"`
	// Conflicted were applied, but overwrote (or merged with, or lost to)
	// someone else's concurrent change; the conflicts table has both values.
	Conflicted map[string][]string    `json:"conflicted"`
	Rejected   map[string][]Rejection `json:"rejected"`
	RejectedID map[string][]string    `json:"experimentalRejectedIds"`
	tables     map[string]*pushOutcome
}

type pushOutcome struct {
	accepted, conflicted []string
	rejected             []Rejection
}

func (r *PushResult) outcome(table string) *pushOutcome {
	if r.tables[table] == nil {
		r.tables[table] = &pushOutcome{}
	}
	return r.tables[table]
}

var clientID = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Push applies a device's changes. Requests that break the protocol (unknown
// tables or columns, wrong types, missing ids, too many records, a cursor the
// server never gave) are refused whole with a validation error, before anything
// is written. Records the rules refuse (a customer the user may not edit, a
// phone that is no phone) are rejected one by one, with the reason, and the
// rest is applied: a device must never be wedged by one bad record.
//
// Each row goes to the CRM once, with the device's base cursor and the columns
// it changed; the CRM decides what it means for the record. A pushed column
// that someone else changed since the device's last sync is a conflict,
// settled by the column's policy in the CRM, with both values kept in the
// conflicts table; the row is then listed as conflicted.
func (e *Engine) Push(ctx context.Context, a models.Actor, lastPulledAt int64, req PushRequest) (PushResult, error) {
	if err := e.validatePush(lastPulledAt, req); err != nil {
		return PushResult{}, err
	}
	base, err := e.pushBase(ctx, a, lastPulledAt)
	if err != nil {
		return PushResult{}, err
	}
	ctx = crm.SettingsOnce(ctx)
	res := PushResult{tables: map[string]*pushOutcome{}}
	for _, t := range e.tables { // parents before children
		tc, ok := req.Changes[t.schema().Name]
		if !ok {
			continue
		}
		if err := t.push(ctx, a, pushCursor{base: base, pulled: lastPulledAt}, tc, e.PushParallel, &res); err != nil {
			return PushResult{}, err
		}
	}
	res.Accepted, res.Conflicted = map[string][]string{}, map[string][]string{}
	res.Rejected, res.RejectedID = map[string][]Rejection{}, map[string][]string{}
	for table, o := range res.tables {
		res.Accepted[table] = append([]string{}, o.accepted...)
		res.Conflicted[table] = append([]string{}, o.conflicted...)
		if len(o.rejected) > 0 {
			res.Rejected[table] = o.rejected
			for _, r := range o.rejected {
				res.RejectedID[table] = append(res.RejectedID[table], r.ID)
			}
		}
	}
	return res, nil
}

// pushBase returns the cursor a push's conflicts are judged from. A cursor this
// server cannot vouch for (older than its sync floor, so from before a restore
// or older than the deletions it keeps; or ahead of its changes, so from a
// rewound database or another server) makes the push blind: judged from 0,
// every pushed column that differs from the stored value and was last written
// by someone else is a recorded conflict. The device's edits are kept that
// way, and its next pull, with the same cursor, answers 410.
func (e *Engine) pushBase(ctx context.Context, a models.Actor, lastPulledAt int64) (int64, error) {
	upTo, err := e.seq.Watermark(ctx, a.TenantID)
	if err != nil {
		return 0, err
	}
	floor, err := e.tombstones.SyncFloor(ctx, a.TenantID)
	if err != nil {
		return 0, err
	}
	if lastPulledAt > upTo || lastPulledAt < floor {
		return 0, nil
	}
	base, known, err := e.seq.PushBase(ctx, a.TenantID, a.UserID, a.DeviceID, lastPulledAt)
	if err != nil || !known {
		// A pull the server kept no record of (older than the rounds it
		// keeps per device): where the device stood before it is unknown,
		// so the push is blind too rather than judged as if the device had
		// seen everything up to its cursor.
		return 0, err
	}
	return base, nil
}

func (e *Engine) validatePush(lastPulledAt int64, req PushRequest) error {
	v := &models.ValidationError{}
	if lastPulledAt < 1 {
		v.Add("last_pulled_at", "must be the timestamp of this device's last pull")
	}
	if req.Changes == nil {
		v.Add("changes", "is required")
	}
	total := 0
	for name, tc := range req.Changes {
		t := e.table(name)
		if t == nil {
			v.Add("changes."+name, "is not a synced table (see GET /v1/sync/schema)")
			continue
		}
		cols := t.schema().Columns
		for kind, rows := range map[string][]map[string]any{"created": tc.Created, "updated": tc.Updated} {
			for i, row := range rows {
				checkRow(v, fmt.Sprintf("changes.%s.%s[%d]", name, kind, i), row, cols)
			}
		}
		for i, id := range tc.Deleted {
			if !clientID.MatchString(id) {
				v.Add(fmt.Sprintf("changes.%s.deleted[%d]", name, i), "must be a record id")
			}
		}
		total += len(tc.Created) + len(tc.Updated) + len(tc.Deleted)
	}
	if total > MaxPushRecords {
		v.Add("changes", "at most %d records per push; push the rest in another", MaxPushRecords)
	}
	return v.Err()
}

// checkRow validates a flat record's shape against the table's columns.
func checkRow(v *models.ValidationError, path string, row map[string]any, cols []Column) {
	id, _ := row["id"].(string)
	if !clientID.MatchString(id) {
		v.Add(path+".id", "must be the record's id (1 to 64 of A-Z, a-z, 0-9, _ and -)")
	}
	for key, val := range row {
		switch {
		case key == "id" || slices.Contains(watermelonOwn, key):
			// WatermelonDB's own created_at and updated_at: the device's,
			// accepted and ignored (see watermelonOwn).
			continue
		case key == "_status":
			if _, ok := val.(string); !ok && val != nil {
				v.Add(path+"."+key, "must be a string")
			}
			continue
		case key == "_changed":
			s, ok := val.(string)
			if !ok && val != nil {
				v.Add(path+"."+key, "must be a string")
			}
			for name := range strings.SplitSeq(s, ",") {
				if name != "" && !slices.Contains(watermelonOwn, name) && !slices.ContainsFunc(cols, func(c Column) bool { return c.Name == name }) {
					v.Add(path+"."+key, "names %q, which is not a column of this table", name)
				}
			}
			continue
		}
		i := slices.IndexFunc(cols, func(c Column) bool { return c.Name == key })
		if i < 0 {
			v.Add(path+"."+key, "is not a column of this table")
			continue
		}
		if msg := typeProblem(cols[i], val); msg != "" {
			v.Add(path+"."+key, "%s", msg)
		}
	}
}

func typeProblem(c Column, val any) string {
	if val == nil {
		if c.IsOptional || c.JSON {
			return ""
		}
		return "must not be null"
	}
	switch c.Type {
	case TypeNumber:
		if _, ok := val.(float64); !ok {
			return "must be a number"
		}
	case TypeBoolean:
		if _, ok := val.(bool); !ok {
			return "must be true or false"
		}
	default:
		s, ok := val.(string)
		if !ok {
			return "must be a string"
		}
		if c.JSON && s != "" && !json.Valid([]byte(s)) {
			return "must be a JSON-encoded string"
		}
	}
	return ""
}

// The times a time column holds: years 0001 to 9999, what a record's JSON (RFC
// 3339) can carry.
var (
	minTimeMillis = float64(time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli())
	maxTimeMillis = float64(time.Date(9999, 12, 31, 23, 59, 59, 999e6, time.UTC).UnixMilli())
)

// writable returns the columns of row the device may write, as JSON values
// ready to decode onto the record: every column the row holds but those the
// server alone writes, which are ignored.
func writable(row map[string]any, cols []Column) (map[string]json.RawMessage, error) {
	out := map[string]json.RawMessage{}
	for _, c := range cols {
		val, present := row[c.Name]
		if !present || c.ReadOnly {
			continue
		}
		raw, err := columnJSON(c, val)
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", c.Name, err)
		}
		out[c.Name] = raw
	}
	return out, nil
}

// columnJSON turns a flat column value back into the record's JSON form.
func columnJSON(c Column, val any) (json.RawMessage, error) {
	switch {
	case val == nil:
		return json.RawMessage("null"), nil
	case c.Time:
		// Out of range is the record's problem, not the push's: the row is
		// rejected alone, so one bad date cannot wedge a device.
		ms := val.(float64)
		if ms < minTimeMillis || ms > maxTimeMillis {
			return nil, &models.ValidationError{Fields: []models.FieldError{{Field: c.Name,
				Message: "must be a time in milliseconds since 1970, within years 0001 to 9999"}}}
		}
		return json.Marshal(time.UnixMilli(int64(ms)).UTC())
	case c.JSON:
		s := val.(string)
		if s == "" {
			return json.RawMessage("null"), nil
		}
		return json.RawMessage(s), nil
	default:
		return json.Marshal(val)
	}
}

// changedColumns reads WatermelonDB's _changed list.
func changedColumns(row map[string]any) []string {
	s, _ := row["_changed"].(string)
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// rejectReason turns a rule error into words for the device's developer.
func rejectReason(err error) (string, bool) {
	var ve *models.ValidationError
	var fe *models.ForbiddenError
	switch {
	case errors.As(err, &ve):
		return ve.Error(), true
	case errors.As(err, &fe):
		return fe.Reason, true
	case errors.Is(err, models.ErrNotFound):
		return "no such record, or not yours to change", true
	case errors.Is(err, models.ErrConflict):
		return "the id is already used by another record", true
	}
	return "", false
}
