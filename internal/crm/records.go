package crm

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/bson"

	"github.com/fieldcrm/fieldcrm/internal/store"
	"github.com/fieldcrm/fieldcrm/models"
)

func meta[R any](r *R) *models.Meta { return models.MetaOf(r) }

// write is one change in progress, handed to the hooks.
type write[R any] struct {
	actor    models.Actor
	settings models.Settings
	now      time.Time
	rec      *R
	// old is the stored record before the change; nil on create.
	old *R
	// flagDuplicates creates customers that match others instead of refusing them.
	flagDuplicates bool
	// resend stores a new version even when nothing changed, so that the
	// record gets a new sync number and devices pull it again.
	resend bool
	// numberSeq is the sequence of a new customer's number, claimed with
	// the customer (see assignNumber); set before prepare, it is the one
	// to take.
	numberSeq int64
}

// hooks are what one collection adds to the generic record logic. Every hook is
// optional.
type hooks[R any] struct {
	// prepare normalizes and validates w.rec, resolves its references and sets
	// its owner and derived fields. It runs before every create and update.
	prepare func(ctx context.Context, w *write[R]) error
	// after runs once w.rec is stored: effects on other records.
	after func(ctx context.Context, w *write[R]) error
	// insert stores a new record in place of the store's Insert, for a
	// collection whose new records bring writes of their own to make in
	// the same transaction (a customer's duplicate keys).
	insert func(ctx context.Context, w *write[R], entry models.AuditEntry) error
	// loaded runs on every record read from the store (decrypting fields).
	loaded func(r *R)
	// view adapts a record for the actor before it is returned (masking).
	view func(a models.Actor, r *R)
	// visible overrides the default rule (the owner scope of models.Actor).
	visible func(a models.Actor, r *R) bool
	// ownOnly gives each record to its owner alone: listed, seen and synced
	// by nobody else, managers and admins included (inboxes).
	ownOnly bool
	// appendOnly refuses updates and deletes (ledgers).
	appendOnly bool
	// same makes creates of an append-only collection idempotent: a create
	// under a stored id is a create sent again (a retried push) when the
	// stored record, which the actor sees, says the same as the new one; it
	// is accepted and changes nothing. Any other create of a taken id (other
	// content, another tenant's record) is refused.
	same func(stored, sent *R) bool
	// reserve runs on a create once prepare passed, before the record is
	// stored: under another record's atomic update it takes what the new
	// record needs from it (the points a redemption takes). settle runs once
	// the create's outcome is known: the record stored, refused for its id,
	// or found stored already (see same). A create that ends with its outcome
	// unknown (an error, a crash) leaves its reservation to the next settle
	// of the same record, which must tell what became of it.
	reserve, settle func(ctx context.Context, w *write[R]) error
	// unauditedCreate stores new records without an audit entry. For inbox
	// notes: the server writes one per reminder it fires, the note and the
	// reminder's delivery records already say what was sent when, and their
	// audit entries were a fifth of the rows a burst of reminders wrote.
	// Changes after the creation (marked read) are audited as usual.
	unauditedCreate bool
	// filters are the list filters the collection accepts.
	filters map[string]filter
	// sorts maps the sort names a client may ask for to stored fields.
	sorts map[string]string
	// scopeAssignee also lists records assigned to the actor.
	scopeAssignee bool
	// timeline says when a record happened and what it was, for the customer timeline.
	timeline func(r *R) (time.Time, string)
	// merge settles, per column, a device's change that met someone else's
	// (see ApplyDeviceEdit); a column not named is last writer wins.
	merge map[string]columnMerge
	// serial are the fields whose write reads the collection's other
	// records (see EditReadsOthers).
	serial []string
	// enter readies new record rec of a push for being applied side by side
	// with the push's other creates (see ApplyDeviceCreates), in the push's
	// order: it returns the keys by which the create reads and writes the
	// collection's other records (a customer's duplicate and lookup keys, as
	// its prepare under settings st will make them), and takes in that
	// order what must follow it (a new customer's number sequence, 0 for
	// none). Without enter, a push's creates are applied one after another.
	enter func(ctx context.Context, rec *R, st models.Settings) (keys []string, seq int64, err error)
}

// Records serves one collection of CRM records.
type Records[R any] struct {
	svc  *Service
	coll string
	h    hooks[R]
	// fields are the types of the record's fields, by JSON name.
	fields map[string]reflect.Type
}

func newRecords[R any](svc *Service, coll string, h hooks[R]) *Records[R] {
	if h.sorts == nil {
		h.sorts = map[string]string{}
	}
	h.sorts["created_at"] = "created_at"
	h.sorts["updated_at"] = "updated_at"
	return &Records[R]{svc: svc, coll: coll, h: h, fields: fieldTypes[R]()}
}

// Create stores a new record for the actor and returns it as the actor sees it.
func (r *Records[R]) Create(ctx context.Context, a models.Actor, in R) (R, error) {
	return r.create(ctx, a, in, false)
}

func (r *Records[R]) create(ctx context.Context, a models.Actor, in R, flagDuplicates bool) (R, error) {
	return r.createAs(ctx, a, in, flagDuplicates, models.NewID())
}

func (r *Records[R]) createAs(ctx context.Context, a models.Actor, in R, flagDuplicates bool, id string) (R, error) {
	w, err := r.createWrite(ctx, a, in, flagDuplicates, id, 0)
	if err != nil {
		var zero R
		if w != nil {
			zero = *w.rec
		}
		return zero, err
	}
	return r.viewFor(a, *w.rec), nil
}

// prepareNew builds the write of a new record under id and runs the prepare
// hook: the record is normalized and checked, nothing is stored. (A dry run
// of an import stops here; of the hooks only the customer's takes a number,
// which import dry runs do not call.)
func (r *Records[R]) prepareNew(ctx context.Context, a models.Actor, in R, flagDuplicates bool, id string, seq int64) (*write[R], error) {
	st, err := r.svc.settings(ctx, a.TenantID)
	if err != nil {
		return nil, err
	}
	now := r.svc.now().UTC()
	rec := in
	*meta(&rec) = models.Meta{
		ID: id, TenantID: a.TenantID, Version: 1,
		CreatedAt: now, CreatedBy: a.UserID, UpdatedAt: now, UpdatedBy: a.UserID,
	}
	w := &write[R]{actor: a, settings: st, now: now, rec: &rec, flagDuplicates: flagDuplicates, numberSeq: seq}
	if r.h.prepare != nil {
		if err := r.h.prepare(ctx, w); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// createWrite stores a new record under id and runs its after hook. After a
// failed store the write is returned with the error (the record as far as
// it got); a failed check returns no write. A create sent again of a stored
// append-only record (see hooks.same) returns the stored record. seq, if
// not 0, is the number sequence its first attempt gives a new customer
// (taken in a push's order, see ApplyDeviceCreates); an attempt started
// again takes the next.
func (r *Records[R]) createWrite(ctx context.Context, a models.Actor, in R, flagDuplicates bool, id string, seq int64) (*write[R], error) {
	for attempt := 1; ; attempt++ {
		w, err := r.createOnce(ctx, a, in, flagDuplicates, id, seq)
		seq = 0
		if !errors.Is(err, errCreateAgain) {
			return w, err
		}
		if attempt == 5 {
			return nil, fmt.Errorf("create %s %s: %w", r.coll, id, err)
		}
	}
}

// errCreateAgain is an insert hook's refusal that prepared what it refused
// anew: the create starts again from its input (see customers' insert).
var errCreateAgain = errors.New("create again")

// createOnce is one attempt of createWrite.
func (r *Records[R]) createOnce(ctx context.Context, a models.Actor, in R, flagDuplicates bool, id string, seq int64) (*write[R], error) {
	w, err := r.prepareNew(ctx, a, in, flagDuplicates, id, seq)
	if err != nil {
		return nil, err
	}
	if r.h.same != nil {
		if found, err := r.storedAlready(ctx, w, false); found {
			return w, err
		}
	}
	if r.h.reserve != nil {
		if err := r.h.reserve(ctx, w); err != nil {
			// A create sent again while the first is being stored may find
			// the first one's reservation taken already: it is no refusal.
			var invalid *models.ValidationError
			if r.h.same != nil && errors.As(err, &invalid) {
				if found, err := r.storedAlready(ctx, w, false); found {
					return w, err
				}
			}
			return nil, err
		}
	}
	m := meta(w.rec)
	changes := diff(nil, w.rec)
	err = r.svc.stamped(ctx, a.DeviceID, m, changes, func(ctx context.Context) error {
		entry := models.AuditEntry{Action: "create", Changes: changes}
		switch {
		case r.h.unauditedCreate:
			return r.svc.store.InsertUnaudited(ctx, r.coll, m, w.rec)
		case r.h.insert != nil:
			return r.h.insert(ctx, w, entry)
		}
		return r.svc.store.Insert(ctx, r.coll, m, w.rec, entry)
	})
	if errors.Is(err, models.ErrConflict) && r.h.same != nil {
		// The id was taken between the check above and the insert: by the
		// same create sent again, or by someone else's record.
		_, err = r.storedAlready(ctx, w, true)
		return w, err
	}
	if err != nil {
		return w, err
	}
	if r.h.settle != nil {
		if err := r.h.settle(ctx, w); err != nil {
			return w, fmt.Errorf("after creating %s %s: %w", r.coll, m.ID, err)
		}
	}
	if r.h.after != nil {
		if err := r.h.after(ctx, w); err != nil {
			return w, fmt.Errorf("after creating %s %s: %w", r.coll, m.ID, err)
		}
	}
	return w, nil
}

// storedAlready decides a create of an append-only record whose id may be
// taken (see hooks.same), and reports whether it found the id taken: in the
// actor's tenant, or anywhere when taken says the store refused the insert.
// A stored record the actor sees that says the same is the create sent
// again: w.rec becomes the stored record and the create succeeds; any other
// is a refusal. Either way the create is settled.
func (r *Records[R]) storedAlready(ctx context.Context, w *write[R], taken bool) (bool, error) {
	stored, err := r.load(ctx, w.actor.TenantID, meta(w.rec).ID)
	// Through the driver a record's insert is two (its audit claim, then the
	// record): an insert refused by another's claim may find the record not
	// stored yet. Wait for it a little; the other insert is milliseconds away.
	// Still not found, the id is taken in another tenant (or by a writer that
	// died mid-insert): refused below, like any id taken by another record.
	for pause := 5 * time.Millisecond; taken && errors.Is(err, models.ErrNotFound) && pause < time.Second; pause *= 2 {
		select {
		case <-ctx.Done():
			return true, ctx.Err()
		case <-time.After(pause):
		}
		stored, err = r.load(ctx, w.actor.TenantID, meta(w.rec).ID)
	}
	switch {
	case errors.Is(err, models.ErrNotFound) && !taken:
		return false, nil
	case err != nil && !errors.Is(err, models.ErrNotFound):
		return true, err
	case err == nil && r.canSee(w.actor, &stored) && r.h.same(&stored, w.rec):
		*w.rec = stored
	default: // another tenant's record, one the actor may not see, or other content
		err = &models.ValidationError{Fields: []models.FieldError{{Field: "id",
			Message: "is taken by another record; " + r.coll + " cannot be changed, so send a new one under a new id"}}}
	}
	if r.h.settle != nil {
		if serr := r.h.settle(ctx, w); serr != nil && err == nil {
			err = fmt.Errorf("settle %s %s sent again: %w", r.coll, meta(w.rec).ID, serr)
		}
	}
	return true, err
}

// Get returns one record the actor may see, or models.ErrNotFound. Tombstones
// are returned (with deleted_at set) so a client can learn of the deletion.
func (r *Records[R]) Get(ctx context.Context, a models.Actor, id string) (R, error) {
	rec, err := r.load(ctx, a.TenantID, id)
	if err != nil {
		return rec, err
	}
	if !r.canSee(a, &rec) {
		var zero R
		return zero, models.ErrNotFound
	}
	return r.viewFor(a, rec), nil
}

func (r *Records[R]) load(ctx context.Context, tenant, id string) (R, error) {
	var rec R
	if err := r.svc.store.Get(ctx, r.coll, tenant, id, &rec); err != nil {
		return rec, err
	}
	if r.h.loaded != nil {
		r.h.loaded(&rec)
	}
	return rec, nil
}

// live loads a record that is not deleted, whoever asks (the server's own
// reads); a tombstone is models.ErrNotFound.
func (r *Records[R]) live(ctx context.Context, tenant, id string) (R, error) {
	rec, err := r.load(ctx, tenant, id)
	if err == nil && meta(&rec).Deleted() {
		return rec, models.ErrNotFound
	}
	return rec, err
}

func (r *Records[R]) canSee(a models.Actor, rec *R) bool {
	if r.h.ownOnly {
		m := meta(rec)
		return m.TenantID == a.TenantID && (m.OwnerID == a.UserID || a.UserID == models.SystemUserID)
	}
	if r.h.visible != nil {
		return r.h.visible(a, rec)
	}
	m := meta(rec)
	return a.CanSeeOwned(m.TenantID, m.OwnerID, m.TeamID)
}

func (r *Records[R]) viewFor(a models.Actor, rec R) R {
	if r.h.view != nil {
		r.h.view(a, &rec)
	}
	return rec
}

// Update changes a record the actor may edit. apply writes the client's
// changes onto the current record (the API decodes the request body onto it);
// everything is then normalized and validated again as a whole. ifMatch, when
// not 0, is the version the client last read: a different stored version
// answers models.ErrStale, so nobody overwrites a change they have not seen.
func (r *Records[R]) Update(ctx context.Context, a models.Actor, id string, ifMatch int64, apply func(dst any) error) (R, error) {
	if r.h.appendOnly {
		var zero R
		return zero, &models.ForbiddenError{Reason: r.coll + " are append-only; add a correcting entry instead"}
	}
	return r.mutate(ctx, a, id, "update", func(w *write[R]) error {
		if err := r.checkEdit(a, w.old, ifMatch); err != nil {
			return err
		}
		if err := apply(w.rec); err != nil {
			return err
		}
		*meta(w.rec) = *meta(w.old) // the decoder refuses these fields; this makes sure
		if r.h.prepare != nil {
			return r.h.prepare(ctx, w)
		}
		return nil
	})
}

// Delete turns a record into a tombstone. Devices learn of it through sync;
// the record stays readable by id with deleted_at set.
func (r *Records[R]) Delete(ctx context.Context, a models.Actor, id string, ifMatch int64) error {
	if r.h.appendOnly {
		return &models.ForbiddenError{Reason: r.coll + " are append-only; add a correcting entry instead"}
	}
	_, err := r.mutate(ctx, a, id, "delete", func(w *write[R]) error {
		if err := r.checkEdit(a, w.old, ifMatch); err != nil {
			return err
		}
		at := w.now
		meta(w.rec).DeletedAt = &at
		return nil
	})
	return err
}

func (r *Records[R]) checkEdit(a models.Actor, old *R, ifMatch int64) error {
	m := meta(old)
	if !r.canSee(a, old) || m.Deleted() {
		return models.ErrNotFound
	}
	if r.h.visible == nil {
		if err := a.CanEditOwned(m.TenantID, m.OwnerID, m.TeamID); err != nil {
			return err
		}
	}
	if ifMatch != 0 && m.Version != ifMatch {
		return fmt.Errorf("%s %s is at version %d, not %d: %w", r.coll, m.ID, m.Version, ifMatch, models.ErrStale)
	}
	return nil
}

// mutate is the one read-modify-write of every change, on the store's
// versioned write (Revise): load, let change edit the record, audit what
// differs, and commit it as the next version. A concurrent writer makes the
// commit fail; Revise then starts again from the fresh record, unless the
// change was conditional on a version (ErrStale). A change that alters
// nothing writes nothing.
func (r *Records[R]) mutate(ctx context.Context, a models.Actor, id, action string, change func(w *write[R]) error) (R, error) {
	var zero R
	st, err := r.svc.settings(ctx, a.TenantID)
	if err != nil {
		return zero, err
	}
	var (
		rec     R
		w       *write[R]
		skipped bool
	)
	err = r.svc.store.Revise(ctx, r.coll, a.TenantID, id, &rec, func(rev *models.Revision) error {
		if !rev.Found {
			return models.ErrNotFound
		}
		if r.h.loaded != nil {
			r.h.loaded(&rec)
		}
		// The copy loses what loaded decrypted (it is not stored): loaded
		// runs on it too.
		old, err := clone(&rec)
		if err != nil {
			return err
		}
		if r.h.loaded != nil {
			r.h.loaded(old)
		}
		now := r.svc.now().UTC()
		w = &write[R]{actor: a, settings: st, now: now, rec: &rec, old: old}
		if err := change(w); err != nil {
			return err
		}
		changes := diff(old, &rec)
		skipped = len(changes) == 0 && !w.resend
		if skipped {
			rev.Skip = true
			return nil
		}
		rev.At, rev.By, rev.Action, rev.Changes = now, a.UserID, action, changes
		m := meta(&rec)
		rev.Around = func(ctx context.Context, write func(ctx context.Context) error) error {
			return r.svc.stamped(ctx, a.DeviceID, m, changes, write)
		}
		return nil
	})
	if err != nil {
		return zero, err
	}
	if !skipped && r.h.after != nil {
		if err := r.h.after(ctx, w); err != nil {
			return rec, fmt.Errorf("after %s of %s %s: %w", action, r.coll, id, err)
		}
	}
	return r.viewFor(a, rec), nil
}

// stamped runs write with m stamped with the tenant's next sync number, on the
// record and on each changed field. The number stays in flight until write
// returns, and write must finish within the sequencer's lease (its context
// says so), so no pull passes a number whose change could still commit.
func (s *Service) stamped(ctx context.Context, device string, m *models.Meta, changes []models.FieldChange, write func(ctx context.Context) error) error {
	seq, done, err := s.seq.Begin(ctx, m.TenantID)
	if err != nil {
		return err
	}
	defer done()
	m.Seq = seq
	fields := maps.Clone(m.FieldSeqs)
	devices := maps.Clone(m.FieldDevices)
	if fields == nil {
		fields = map[string]int64{}
	}
	if devices == nil {
		devices = map[string]string{}
	}
	for _, c := range changes {
		fields[c.Field] = seq
		if device == "" {
			delete(devices, c.Field)
		} else {
			devices[c.Field] = device
		}
	}
	m.FieldSeqs, m.FieldDevices = fields, devices
	ctx, cancel := context.WithTimeout(ctx, s.seq.Lease()*4/5)
	defer cancel()
	return write(ctx)
}

// clone deep-copies a record through its BSON form.
func clone[R any](rec *R) (*R, error) {
	raw, err := bson.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("copy record: %w", err)
	}
	var out R
	if err := bson.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("copy record: %w", err)
	}
	return &out, nil
}

// unaudited are the fields every write changes; an audit entry lists the rest.
var unaudited = []string{"version", "updated_at", "updated_by"}

// sensitive are fields whose values the audit log keeps masked.
var sensitive = map[string]func(string) string{"national_id": models.MaskNationalID}

// diff lists the top-level fields (by JSON name) whose values differ between
// old and new; old is nil for a new record.
func diff[R any](old, new *R) []models.FieldChange {
	before, after := jsonFields(old), jsonFields(new)
	var changes []models.FieldChange
	for k, v := range after {
		if slices.Contains(unaudited, k) || reflect.DeepEqual(before[k], v) {
			continue
		}
		changes = append(changes, models.FieldChange{Field: k, Old: masked(k, before[k]), New: masked(k, v)})
	}
	slices.SortFunc(changes, func(a, b models.FieldChange) int {
		if a.Field < b.Field {
			return -1
		}
		return 1
	})
	return changes
}

func jsonFields(rec any) map[string]any {
	m := map[string]any{}
	if rec == nil || reflect.ValueOf(rec).IsNil() {
		return m
	}
	raw, _ := json.Marshal(rec)
	_ = json.Unmarshal(raw, &m)
	return m
}

func masked(field string, v any) any {
	mask, ok := sensitive[field]
	if s, isString := v.(string); ok && isString {
		return mask(s)
	}
	return v
}

// ListOptions page and filter a list.
type ListOptions struct {
	// Filters are the client's query parameters, checked against the
	// collection's filters; unknown names are refused.
	Filters map[string]string
	// Sort is a sort name, "-" in front for descending; empty sorts by id.
	Sort  string
	After string
	Limit int
}

// Page is one page of a list.
type Page[R any] struct {
	Data []R `json:"data"`
	// NextAfter is passed as ?after= for the next page; null on the last page.
	NextAfter *string `json:"next_after"`
}

// List returns a page of the records the actor may see, without their
// per-field sync stamps (models.Query.Shown): a page is shown, never written
// back.
func (r *Records[R]) List(ctx context.Context, a models.Actor, o ListOptions) (Page[R], error) {
	q, err := r.listQuery(ctx, a, o)
	if err != nil {
		return Page[R]{}, err
	}
	q.Limit = o.Limit + 1
	q.Shown = true
	var recs []R
	if err := r.svc.store.Find(ctx, r.coll, q, &recs); err != nil {
		return Page[R]{}, err
	}
	out := Page[R]{Data: make([]R, 0, len(recs))}
	for i := range recs {
		if i == o.Limit {
			next := encodePosition(&recs[i-1], q.SortField)
			out.NextAfter = &next
			break
		}
		if r.h.loaded != nil {
			r.h.loaded(&recs[i])
		}
		out.Data = append(out.Data, r.viewFor(a, recs[i]))
	}
	return out, nil
}

// CheckList validates list options (filters, sort) without reading anything.
func (r *Records[R]) CheckList(ctx context.Context, a models.Actor, o ListOptions) error {
	_, err := r.listQuery(ctx, a, o)
	return err
}

// Each calls fn with every record List would return over all its pages, as
// the actor sees them (without their sync stamps, as List), reading them in
// one query (an export): paging would run the query, a scan on the embedded
// engines, once per page.
func (r *Records[R]) Each(ctx context.Context, a models.Actor, o ListOptions, fn func(R) error) error {
	q, err := r.listQuery(ctx, a, o)
	if err != nil {
		return err
	}
	q.Shown = true
	return r.svc.store.Each(ctx, r.coll, q, func(decode func(any) error) error {
		var rec R
		if err := decode(&rec); err != nil {
			return fmt.Errorf("decode %s: %w", r.coll, err)
		}
		if r.h.loaded != nil {
			r.h.loaded(&rec)
		}
		return fn(r.viewFor(a, rec))
	})
}

// listQuery turns list options into the store query (without its limit).
func (r *Records[R]) listQuery(ctx context.Context, a models.Actor, o ListOptions) (models.Query, error) {
	st, err := r.svc.settings(ctx, a.TenantID)
	if err != nil {
		return models.Query{}, err
	}
	// The public pool is listed when asked for (?pool=), not mixed into "my customers".
	_, askedForPool := o.Filters["pool"]
	q := models.Query{Tenant: a.TenantID, Scope: a.ListScope(r.coll == store.Customers && askedForPool)}
	if r.h.scopeAssignee && !q.Scope.All {
		q.OrAssignee = a.UserID
	}
	if r.h.ownOnly {
		q.Scope = models.Scope{OwnerIDs: []string{a.UserID}}
	}
	v := &models.ValidationError{}
	for name, raw := range o.Filters {
		f, ok := r.h.filters[name]
		if !ok {
			v.Add(name, "is not a filter of %s; use one of %s", r.coll, filterNames(r.h.filters))
			continue
		}
		conds, err := f.conds(raw, st)
		if err != nil {
			v.Add(name, "%s", err.Error())
			continue
		}
		q.Conds = append(q.Conds, conds...)
	}
	sortName, desc := o.Sort, false
	if len(sortName) > 0 && sortName[0] == '-' {
		sortName, desc = sortName[1:], true
	}
	if sortName != "" {
		field, ok := r.h.sorts[sortName]
		if !ok {
			v.Add("sort", "must be one of %s, with - in front for descending", sortNames(r.h.sorts))
		}
		q.SortField = field
	}
	q.Desc = desc
	if o.After != "" {
		pos, err := decodePosition(o.After)
		if err != nil {
			v.Add("after", "is not a cursor returned by this list")
		}
		q.After = pos
	}
	return q, v.Err()
}

// cursor is the decoded form of a list's "after" parameter: the sort value of
// the last record shown (typed, so times compare as times) and its id.
type cursor struct {
	Time   *time.Time `json:"t,omitempty"`
	String *string    `json:"s,omitempty"`
	Number *float64   `json:"n,omitempty"`
	ID     string     `json:"id"`
}

func encodePosition[R any](rec *R, field string) string {
	c := cursor{ID: meta(rec).ID}
	if field != "" {
		raw, _ := bson.Marshal(rec)
		switch v := bson.Raw(raw).Lookup(strings.Split(field, ".")...); v.Type {
		case bson.TypeDateTime:
			t := v.Time().UTC()
			c.Time = &t
		case bson.TypeString:
			s := v.StringValue()
			c.String = &s
		case bson.TypeDouble:
			n := v.Double()
			c.Number = &n
		case bson.TypeInt32, bson.TypeInt64:
			n := float64(v.AsInt64())
			c.Number = &n
		}
	}
	raw, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(raw)
}

func decodePosition(s string) (*models.ListPosition, error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, err
	}
	var c cursor
	if err := json.Unmarshal(raw, &c); err != nil || c.ID == "" {
		return nil, errors.New("bad cursor")
	}
	p := &models.ListPosition{ID: c.ID}
	switch {
	case c.Time != nil:
		p.Value = *c.Time
	case c.String != nil:
		p.Value = *c.String
	case c.Number != nil:
		p.Value = *c.Number
	}
	return p, nil
}

// Change is a record that changed after a device's sync cursor.
type Change[R any] struct {
	// Record is the record as the actor sees it (masked where it must be).
	Record R
	// Visible says whether the record belongs on the actor's devices now
	// (models.Actor.SyncsTo); WasVisible whether it did under an earlier owner,
	// so a device may hold it and must delete it.
	Visible, WasVisible bool
}

// Narrowing says which changes ChangesSince may leave out.
type Narrowing int

// Narrowings.
const (
	// AllChanges leaves none out.
	AllChanges Narrowing = iota
	// MayHold leaves out records the actor does not see that never had an
	// earlier owner: no device of the actor's can hold them.
	MayHold
	// LiveSeen leaves out, also, deleted records and those the actor does
	// not see: a device pulling from nothing holds none of them.
	LiveSeen
)

// ChangesSince returns up to limit records of the actor's tenant whose last
// change has a sync number in (after, upTo], in number order, tombstones
// included. Visibility is decided per record, so that a record moved away from
// the actor (reassignment) still comes back, marked not visible.
//
// Narrowed, the store leaves out records that the actor does not see and
// no device of theirs may hold (some may still come, marked not visible):
// a pull sends none of them. Narrowed to LiveSeen, also deleted records and
// every record the actor does not see now: a first sync sends neither.
func (r *Records[R]) ChangesSince(ctx context.Context, a models.Actor, after, upTo int64, limit int, narrow Narrowing) ([]Change[R], error) {
	var recs []R
	var err error
	if narrow == AllChanges {
		err = r.svc.store.Changes(ctx, r.coll, a.TenantID, after, upTo, limit, &recs)
	} else {
		scope, orAssignee := a.ListScope(false), ""
		if r.h.visible != nil && !scope.All {
			orAssignee = a.UserID
		}
		if r.h.ownOnly {
			scope = models.Scope{OwnerIDs: []string{a.UserID}}
		}
		err = r.svc.store.ChangesSeen(ctx, r.coll, a.TenantID, after, upTo, limit, scope, orAssignee, narrow == LiveSeen, &recs)
	}
	if err != nil {
		return nil, err
	}
	out := make([]Change[R], len(recs))
	for i := range recs {
		if r.h.loaded != nil {
			r.h.loaded(&recs[i])
		}
		m := meta(&recs[i])
		visible := a.SyncsTo(m) || (r.h.visible != nil && m.OwnerID != "" && r.h.visible(a, &recs[i]))
		if r.h.ownOnly {
			visible = m.OwnerID == a.UserID
		}
		out[i] = Change[R]{Record: r.viewFor(a, recs[i]), Visible: visible, WasVisible: a.SyncedTo(m)}
	}
	return out, nil
}

// Exists reports whether the tenant has a record with id, tombstones included.
func (r *Records[R]) Exists(ctx context.Context, tenant, id string) (bool, error) {
	_, err := r.load(ctx, tenant, id)
	if errors.Is(err, models.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Mutate applies change to record id as a versioned, audited write, as the
// actor, with no check of their rights: for the server's own decisions
// (marking a conflict resolved).
func (r *Records[R]) Mutate(ctx context.Context, a models.Actor, id string, change func(rec *R) error) (R, error) {
	return r.mutate(ctx, a, id, "update", func(w *write[R]) error { return change(w.rec) })
}

// resend gives record id a new version and sync number without changing it,
// so that every device holding it pulls it again: a device that pushed a
// value the server stored differently (merged, normalized) must receive the
// stored one. The version is audited as "resend", with no changes.
func (r *Records[R]) resend(ctx context.Context, a models.Actor, id string) error {
	a.DeviceID = ""
	_, err := r.mutate(ctx, a, id, "resend", func(w *write[R]) error {
		if meta(w.old).Deleted() {
			return nil
		}
		w.resend = true
		return nil
	})
	return err
}

// restore brings back a deleted record the actor may edit, with apply's
// changes, through the collection's ordinary checks: visibility, the
// actor's rights, append-only, server fields kept, normalization and
// validation. Resolving a conflict with a delete uses it.
func (r *Records[R]) restore(ctx context.Context, a models.Actor, id string, apply func(dst any) error) (R, error) {
	if r.h.appendOnly {
		var zero R
		return zero, &models.ForbiddenError{Reason: r.coll + " are append-only; add a correcting entry instead"}
	}
	return r.mutate(ctx, a, id, "restore", func(w *write[R]) error {
		m := meta(w.old)
		if !r.canSee(a, w.old) {
			return models.ErrNotFound
		}
		if r.h.visible == nil {
			if err := a.CanEditOwned(m.TenantID, m.OwnerID, m.TeamID); err != nil {
				return err
			}
		}
		if apply != nil {
			if err := apply(w.rec); err != nil {
				return err
			}
		}
		*meta(w.rec) = *m
		meta(w.rec).DeletedAt = nil
		if r.h.prepare != nil {
			return r.h.prepare(ctx, w)
		}
		return nil
	})
}

// unmasked returns a record the actor may see as stored, without the view
// that masks it for them: for decisions the server makes on the actor's
// behalf (reverting a conflict). Never hand it to a client.
func (r *Records[R]) unmasked(ctx context.Context, a models.Actor, id string) (R, error) {
	rec, err := r.load(ctx, a.TenantID, id)
	if err == nil && !r.canSee(a, &rec) {
		var zero R
		return zero, models.ErrNotFound
	}
	return rec, err
}

// Collection is the name of the records' collection (and sync table).
func (r *Records[R]) Collection() string { return r.coll }
