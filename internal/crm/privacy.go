package crm

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/fieldcrm/fieldcrm/internal/store"
	"github.com/fieldcrm/fieldcrm/models"
)

// PersonalData is everything fieldcrm stores about one customer, as an access
// request (PIPL art. 45, GDPR art. 15) returns it: the customer (and the
// customers merged into it, which were the same person), every record of
// theirs including deleted ones, the conflicts about those records, the inbox
// entries that name them, and their whole version history.
type PersonalData struct {
	ExportedAt     time.Time             `json:"exported_at"`
	Customer       models.Customer       `json:"customer"`
	MergedFrom     []models.Customer     `json:"merged_from"`
	Contacts       []models.Contact      `json:"contacts"`
	Interactions   []models.Interaction  `json:"interactions"`
	Tasks          []models.Task         `json:"tasks"`
	Orders         []models.Order        `json:"orders"`
	Payments       []models.Payment      `json:"payments"`
	Tickets        []models.Ticket       `json:"tickets"`
	Surveys        []models.Survey       `json:"surveys"`
	LoyaltyEntries []models.LoyaltyEntry `json:"loyalty_entries"`
	Conflicts      []models.Conflict     `json:"conflicts"`
	Notifications  []models.Notification `json:"notifications"`
	History        []models.AuditEntry   `json:"history"`
}

// Erasure reports what an erasure request changed.
type Erasure struct {
	CustomerID string    `json:"customer_id"`
	ErasedAt   time.Time `json:"erased_at"`
	// Records counts the records erased, per collection (a record already
	// erased counts too: an erasure may be repeated).
	Records map[string]int `json:"records"`
	// HistoryEntries is how many version-history entries had values removed.
	HistoryEntries int `json:"history_entries"`
}

// maxMergeDepth bounds how far back a chain of merges is followed.
const maxMergeDepth = 10

// privacyOfficer checks that the actor may handle privacy requests: admins
// only, since both answers hold everything about a person.
func privacyOfficer(a models.Actor) error {
	if a.Role != models.RoleAdmin {
		return &models.ForbiddenError{Reason: "privacy requests (access, erasure) are handled by admins"}
	}
	return nil
}

// PersonalData answers an access request for customer id.
func (s *Service) PersonalData(ctx context.Context, a models.Actor, id string) (PersonalData, error) {
	if err := privacyOfficer(a); err != nil {
		return PersonalData{}, err
	}
	customers, err := s.customerAndMerged(ctx, a.TenantID, id)
	if err != nil {
		return PersonalData{}, err
	}
	out := PersonalData{ExportedAt: s.now().UTC(), Customer: customers[0], MergedFrom: customers[1:]}
	for _, c := range customers {
		if err := s.collect(ctx, a.TenantID, c.ID, &out); err != nil {
			return PersonalData{}, err
		}
	}
	ids := recordIDs(&out)
	if out.Conflicts, err = s.conflictsAbout(ctx, a.TenantID, ids); err != nil {
		return PersonalData{}, err
	}
	if out.History, err = s.store.AuditOf(ctx, a.TenantID, append(ids, idsOf(out.Conflicts)...)); err != nil {
		return PersonalData{}, err
	}
	return out, nil
}

// Erase answers an erasure request for customer id: the personal data of the
// customer, of the customers merged into it and of all their records goes
// (models.PersonalFields says which fields), as ordinary versioned writes, so
// every device receives the erased records at its next pull, and each record's
// audit shows an "erase". Then the erased values are removed from the version
// history. Amounts, dates, stages and ratings stay, so reports keep adding up.
func (s *Service) Erase(ctx context.Context, a models.Actor, id string) (Erasure, error) {
	data, err := s.PersonalData(ctx, a, id)
	if err != nil {
		return Erasure{}, err
	}
	out := Erasure{CustomerID: id, ErasedAt: s.now().UTC(), Records: map[string]int{}}
	n := out.Records
	steps := []func() error{
		func() error {
			return eraseEach(ctx, s.Customers, a, append([]models.Customer{data.Customer}, data.MergedFrom...), n)
		},
		func() error { return eraseEach(ctx, s.Contacts, a, data.Contacts, n) },
		func() error { return eraseEach(ctx, s.Interactions, a, data.Interactions, n) },
		func() error { return eraseEach(ctx, s.Tasks, a, data.Tasks, n) },
		func() error { return eraseEach(ctx, s.Orders, a, data.Orders, n) },
		func() error { return eraseEach(ctx, s.Payments, a, data.Payments, n) },
		func() error { return eraseEach(ctx, s.Tickets, a, data.Tickets, n) },
		func() error { return eraseEach(ctx, s.Surveys, a, data.Surveys, n) },
		func() error { return eraseEach(ctx, s.LoyaltyEntries, a, data.LoyaltyEntries, n) },
		func() error { return eraseEach(ctx, s.Notifications, a, data.Notifications, n) },
		func() error { return s.eraseConflicts(ctx, a, data.Conflicts, n) },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return out, err
		}
	}
	ids := append(recordIDs(&data), idsOf(data.Conflicts)...)
	out.HistoryEntries, err = s.store.ScrubAudit(ctx, a.TenantID, ids, models.PersonalFields, models.Erased)
	if err != nil {
		return out, fmt.Errorf("erase customer %s: version history: %w", id, err)
	}
	s.log.InfoContext(ctx, "customer personal data erased", "tenant", a.TenantID, "customer", id,
		"by", a.UserID, "records", out.Records, "history_entries", out.HistoryEntries)
	return out, nil
}

// customerAndMerged loads customer id (a tombstone too) and every customer
// merged into it, directly or through a chain of merges.
func (s *Service) customerAndMerged(ctx context.Context, tenant, id string) ([]models.Customer, error) {
	first, err := s.Customers.load(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	all := []models.Customer{first}
	next := []string{id}
	for depth := 0; len(next) > 0 && depth < maxMergeDepth; depth++ {
		var merged []models.Customer
		q := models.Query{Tenant: tenant, Scope: models.Scope{All: true}, WithDeleted: true, Limit: maxChildren,
			Conds: []models.Cond{{Field: "merged_into", Op: models.OpIn, Value: next}}}
		if err := s.store.Find(ctx, store.Customers, q, &merged); err != nil {
			return nil, fmt.Errorf("customers merged into %v: %w", next, err)
		}
		next = next[:0]
		for _, m := range merged {
			if s.Customers.h.loaded != nil {
				s.Customers.h.loaded(&m)
			}
			all = append(all, m)
			next = append(next, m.ID)
		}
	}
	return all, nil
}

// collect adds every record of customer id, deleted ones included, to out.
func (s *Service) collect(ctx context.Context, tenant, id string, out *PersonalData) error {
	type step func() error
	for _, load := range []step{
		func() error { return appendAll(ctx, s.Contacts, tenant, id, &out.Contacts) },
		func() error { return appendAll(ctx, s.Interactions, tenant, id, &out.Interactions) },
		func() error { return appendAll(ctx, s.Tasks, tenant, id, &out.Tasks) },
		func() error { return appendAll(ctx, s.Orders, tenant, id, &out.Orders) },
		func() error { return appendAll(ctx, s.Payments, tenant, id, &out.Payments) },
		func() error { return appendAll(ctx, s.Tickets, tenant, id, &out.Tickets) },
		func() error { return appendAll(ctx, s.Surveys, tenant, id, &out.Surveys) },
		func() error { return appendAll(ctx, s.LoyaltyEntries, tenant, id, &out.LoyaltyEntries) },
		func() error { return appendAll(ctx, s.Notifications, tenant, id, &out.Notifications) },
	} {
		if err := load(); err != nil {
			return err
		}
	}
	return nil
}

// appendAll appends to dst every record of r with customer_id id, deleted too.
func appendAll[R any](ctx context.Context, r *Records[R], tenant, id string, dst *[]R) error {
	q := childQuery(tenant, id, maxChildren)
	q.WithDeleted = true
	var recs []R
	if err := r.svc.store.Find(ctx, r.coll, q, &recs); err != nil {
		return fmt.Errorf("%s of customer %s: %w", r.coll, id, err)
	}
	if *dst == nil {
		*dst = []R{}
	}
	for i := range recs {
		if r.h.loaded != nil {
			r.h.loaded(&recs[i])
		}
	}
	*dst = append(*dst, recs...)
	return nil
}

// conflictsAbout finds the conflicts recorded on any of the records.
func (s *Service) conflictsAbout(ctx context.Context, tenant string, ids []string) ([]models.Conflict, error) {
	out := []models.Conflict{}
	for chunk := range slices.Chunk(ids, 500) {
		var some []models.Conflict
		q := models.Query{Tenant: tenant, Scope: models.Scope{All: true}, WithDeleted: true, Limit: maxChildren,
			Conds: []models.Cond{{Field: "record_id", Op: models.OpIn, Value: chunk}}}
		if err := s.store.Find(ctx, store.Conflicts, q, &some); err != nil {
			return nil, fmt.Errorf("conflicts about %d records: %w", len(chunk), err)
		}
		out = append(out, some...)
	}
	return out, nil
}

// recordIDs lists the ids of every record in d, customers first.
func recordIDs(d *PersonalData) []string {
	ids := []string{d.Customer.ID}
	for _, c := range d.MergedFrom {
		ids = append(ids, c.ID)
	}
	ids = append(ids, idsOf(d.Contacts)...)
	ids = append(ids, idsOf(d.Interactions)...)
	ids = append(ids, idsOf(d.Tasks)...)
	ids = append(ids, idsOf(d.Orders)...)
	ids = append(ids, idsOf(d.Payments)...)
	ids = append(ids, idsOf(d.Tickets)...)
	ids = append(ids, idsOf(d.Surveys)...)
	ids = append(ids, idsOf(d.LoyaltyEntries)...)
	return append(ids, idsOf(d.Notifications)...)
}

// idsOf lists the ids of recs.
func idsOf[R any](recs []R) []string {
	ids := make([]string, len(recs))
	for i := range recs {
		ids[i] = meta(&recs[i]).ID
	}
	return ids
}

// erasable is a record type that knows which of its fields are personal data.
type erasable[R any] interface {
	*R
	ErasePersonalData()
}

// eraseEach erases each record as a versioned write with the action "erase",
// whoever owns it and whether or not it is deleted; append-only records too,
// since an erasure overrides the ledger rule for text. A record erased before
// is left as it is (the write finds nothing to change). It counts the records
// in erased, by collection.
func eraseEach[R any, P erasable[R]](ctx context.Context, r *Records[R], a models.Actor, recs []R, erased map[string]int) error {
	for i := range recs {
		id := meta(&recs[i]).ID
		_, err := r.mutate(ctx, a, id, "erase", func(w *write[R]) error {
			P(w.rec).ErasePersonalData()
			return nil
		})
		if err != nil {
			return fmt.Errorf("erase %s %s: %w", r.coll, id, err)
		}
		erased[r.coll]++
	}
	return nil
}

// eraseConflicts removes both values of each conflict and closes it: a
// conflict cannot be reverted to a value that was erased.
func (s *Service) eraseConflicts(ctx context.Context, a models.Actor, conflicts []models.Conflict, erased map[string]int) error {
	for _, c := range conflicts {
		_, err := s.Conflicts.mutate(ctx, a, c.ID, "erase", func(w *write[models.Conflict]) error {
			w.rec.ServerValue, w.rec.DeviceValue, w.rec.Sealed = "null", "null", false
			if w.rec.Resolution == "" {
				at := w.now
				w.rec.Resolution, w.rec.ResolvedBy, w.rec.ResolvedAt = "keep", a.UserID, &at
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("erase conflict %s: %w", c.ID, err)
		}
		erased[store.Conflicts]++
	}
	return nil
}
