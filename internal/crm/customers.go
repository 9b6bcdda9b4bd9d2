package crm

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fieldcrm/fieldcrm/internal/store"
	"github.com/fieldcrm/fieldcrm/models"
)

func (s *Service) customerHooks() hooks[models.Customer] {
	return hooks[models.Customer]{
		prepare: s.prepareCustomer,
		// Both sides' tags are kept: a tag only adds a label, and a rep
		// tagging offline must not remove the tags another added meanwhile.
		merge: map[string]columnMerge{"tags": unionOfLists},
		// A customer's kind, names, phones and e-mails make its duplicate
		// keys, checked against the tenant's other customers when they change.
		serial: []string{"kind", "name", "company_name", "phones", "emails"},
		enter: func(ctx context.Context, c *models.Customer, st models.Settings) ([]string, int64, error) {
			if c.Prepare(st) != nil {
				return nil, 0, nil // refused by its prepare, before it takes a number
			}
			if c.Number != "" {
				return c.LookupKeys(), 0, nil
			}
			seq, err := s.nextNumber(ctx, c.TenantID)
			return c.LookupKeys(), seq, err
		},
		// A new customer's keys are stored with it (see InsertCustomer).
		insert: func(ctx context.Context, w *write[models.Customer], entry models.AuditEntry) error {
			err := s.store.InsertCustomer(ctx, w.rec, entry, liveKeys(w.rec), w.numberSeq)
			if errors.Is(err, store.ErrNumberTaken) {
				// The counter was behind the claims (Redis lost it): move it
				// past them, and the create starts again with a new number.
				if err := s.counterPastClaims(ctx, w.rec.TenantID); err != nil {
					return err
				}
				return fmt.Errorf("%w: %w", errCreateAgain, err)
			}
			return err
		},
		after: func(ctx context.Context, w *write[models.Customer]) error {
			if w.old == nil {
				return nil
			}
			if err := s.store.IndexCustomerKeys(ctx, w.rec.TenantID, w.rec.ID, liveKeys(w.old), liveKeys(w.rec)); err != nil {
				return err
			}
			if w.old != nil && w.rec.Deleted() && !w.old.Deleted() && w.rec.MergedInto == "" {
				return s.deleteChildren(ctx, w.actor, w.rec.ID)
			}
			return nil
		},
		loaded: func(c *models.Customer) {
			id, err := s.sealer.Open(c.NationalIDSealed)
			if err != nil {
				s.log.Error("cannot open a national id", "customer", c.ID, "err", err.Error())
			}
			c.NationalID = id
		},
		view: func(a models.Actor, c *models.Customer) {
			if a.Role != models.RoleAdmin {
				c.NationalID = models.MaskNationalID(c.NationalID)
			}
		},
		filters: map[string]filter{
			"q":             {doc: "customer number, name, company, phone or e-mail", kind: ParamText, conds: searchConds},
			"stage":         described(equals("stage", models.Stages...), "lifecycle stage"),
			"customer_type": described(equals("customer_type", models.CustomerTypes...), "customer type"),
			"source":        described(equals("source", models.SourceChannels...), "where the customer came from"),
			"region":        described(equals("region"), "region"),
			"industry":      described(equals("industry"), "industry"),
			"tag":           described(equals("tags"), "a tag the customer has"),
			"owner_id":      described(equals("owner_id"), "the owner's user id"),
			"team_id":       described(equals("team_id"), "the owner's team id"),
			"value_tier":    described(equals("value_tier"), "value tier (the tenant's tiers)"),
			"credit_rating": described(equals("credit.rating", "A", "B", "C", "D", "unrated"), "credit rating"),
			"duplicate":     described(flag("duplicate"), "flagged as a possible duplicate"),
			"number":        described(equals("number"), "customer number"),
			"pool":          poolFilter,
			"updated_since": described(since("updated_at", false), "changed since"),
		},
		sorts: map[string]string{"name": "name", "number": "number", "last_interaction_at": "last_interaction_at"},
	}
}

var poolFilter = filter{doc: "true: only the public pool's (unowned) customers; false: only owned ones", kind: ParamBool, conds: func(raw string, _ models.Settings) ([]models.Cond, error) {
	switch raw {
	case "true":
		return []models.Cond{{Field: "owner_id", Op: models.OpEq, Value: ""}}, nil
	case "false":
		return []models.Cond{{Field: "owner_id", Op: models.OpNe, Value: ""}}, nil
	}
	return nil, errors.New("must be true or false")
}}

// searchConds finds a customer by number, name, company, e-mail or phone. A
// query that reads as a phone number is normalized first, so "138 0013 8000"
// finds "+8613800138000"; anything else is a case-insensitive substring.
func searchConds(raw string, st models.Settings) ([]models.Cond, error) {
	if !utf8.ValidString(raw) {
		return nil, errors.New("must be UTF-8 text")
	}
	q := models.NormalizeText(raw)
	if q == "" || len(q) > 200 {
		return nil, errors.New("must be 1 to 200 characters")
	}
	digits, phoneLike := 0, true
	for _, r := range q {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case !strings.ContainsRune("+-() .", r):
			phoneLike = false
		}
	}
	if phoneLike && digits >= 7 {
		if e164, err := models.NormalizePhone(q, st.PhoneRegion); err == nil {
			return []models.Cond{{Field: "search_keys", Op: models.OpEq, Value: e164}}, nil
		}
	}
	return []models.Cond{{Field: "search_keys", Op: models.OpContains, Value: strings.ToLower(q)}}, nil
}

// liveKeys are the keys a customer is found by: none once deleted.
func liveKeys(c *models.Customer) []string {
	if c == nil || c.Deleted() {
		return nil
	}
	return c.LookupKeys()
}

// CreateCustomer creates a customer. A customer matching others (same phone,
// e-mail, or company) is refused with a models.DuplicateError unless
// flagDuplicates is set; then it is created with its duplicate flag set, as
// records from offline devices always are.
func (s *Service) CreateCustomer(ctx context.Context, a models.Actor, in models.Customer, flagDuplicates bool) (models.Customer, error) {
	return s.Customers.create(ctx, a, in, flagDuplicates)
}

func (s *Service) prepareCustomer(ctx context.Context, w *write[models.Customer]) error {
	c := w.rec
	if err := c.Prepare(w.settings); err != nil {
		return err
	}
	if err := keepMaskedNationalID(c, w.old); err != nil {
		return err
	}
	c.NationalIDSealed = s.sealer.Seal(c.NationalID)
	if w.old != nil && w.old.NationalID == c.NationalID {
		c.NationalIDSealed = w.old.NationalIDSealed // unchanged: keep the stored ciphertext
	}
	if w.old == nil {
		c.OwnerID, c.TeamID = w.actor.UserID, w.actor.TeamID
		c.StageHistory = []models.Transition{{To: c.Stage, By: w.actor.UserID, At: w.now}}
		c.OwnerHistory = []models.OwnerChange{{To: c.OwnerID, By: w.actor.UserID, At: w.now, Reason: "created"}}
		at := w.now
		c.AssignedAt = &at
		c.Balance = []models.Money{}
		c.Loyalty = models.Loyalty{Tier: w.settings.TierFor(0)}
	} else if c.Stage != w.old.Stage {
		c.StageHistory = append(c.StageHistory, models.Transition{From: w.old.Stage, To: c.Stage, By: w.actor.UserID, At: w.now})
	}
	if err := s.checkDuplicates(ctx, w); err != nil {
		return err
	}
	if c.Number == "" {
		if err := s.assignNumber(ctx, w); err != nil {
			return err
		}
	}
	c.RefreshSearchKeys()
	return nil
}

// checkDuplicates compares the customer's dedupe keys with the tenant's other
// customers. A new customer from the REST API that matches is refused; otherwise
// the match is recorded in the duplicate flag (and cleared when it no longer holds).
func (s *Service) checkDuplicates(ctx context.Context, w *write[models.Customer]) error {
	c := w.rec
	if w.old != nil && slices.Equal(w.old.DedupeKeys, c.DedupeKeys) {
		return nil
	}
	c.Duplicate = nil
	if len(c.DedupeKeys) == 0 {
		return nil
	}
	matches, err := s.store.CustomersSharingKeys(ctx, c.TenantID, c.DedupeKeys, c.ID, 20)
	if err != nil {
		return err
	}
	if len(matches) == 0 {
		return nil
	}
	flag := &models.DuplicateFlag{}
	dup := &models.DuplicateError{}
	for _, m := range matches {
		cand := candidate(m, c.DedupeKeys)
		flag.CandidateIDs = append(flag.CandidateIDs, m.ID)
		flag.Reasons = append(flag.Reasons, cand.Reasons...)
		dup.Candidates = append(dup.Candidates, cand)
	}
	if w.old == nil && !w.flagDuplicates {
		return dup
	}
	slices.Sort(flag.Reasons)
	flag.Reasons = slices.Compact(flag.Reasons)
	c.Duplicate = flag
	return nil
}

// candidate describes existing customer m as a duplicate of one with keys:
// who it is and which keys both have.
func candidate(m models.Customer, keys []string) models.DuplicateCandidate {
	var reasons []string
	for _, k := range m.DedupeKeys {
		if slices.Contains(keys, k) {
			reasons = append(reasons, models.DuplicateReason(k))
		}
	}
	return models.DuplicateCandidate{ID: m.ID, Number: m.Number, Name: m.Name, Reasons: reasons}
}

// assignNumber gives the customer the tenant's next customer number. The Redis
// counter makes it fast; the claim under a unique id in MongoDB makes it safe:
// if Redis lost the counter, the claim fails, the counter is moved past the
// highest number ever claimed and the next one is tried. A new customer's
// claim is written with the customer (w.numberSeq, see InsertCustomer),
// where a refused claim makes the create start again.
func (s *Service) assignNumber(ctx context.Context, w *write[models.Customer]) error {
	tenant := w.rec.TenantID
	for attempt := 0; attempt < 5; attempt++ {
		seq := w.numberSeq // taken already in a push's order (see enter)
		if seq == 0 {
			var err error
			if seq, err = s.nextNumber(ctx, tenant); err != nil {
				return err
			}
		}
		number := w.settings.CustomerNumber.Format(seq, w.now)
		if w.old == nil {
			w.rec.Number, w.numberSeq = number, seq
			return nil
		}
		err := s.store.ClaimCustomerNumber(ctx, tenant, seq, number, w.rec.ID)
		if err == nil {
			w.rec.Number = number
			return nil
		}
		if !errors.Is(err, models.ErrConflict) {
			return err
		}
		if err := s.counterPastClaims(ctx, tenant); err != nil {
			return err
		}
	}
	return fmt.Errorf("assign customer number for tenant %s: no free number after 5 attempts", tenant)
}

func customerCounter(tenant string) string { return "customer-number:" + tenant }

// nextNumber takes the tenant's next customer-number sequence. A counter
// Redis does not hold (the tenant's first customer, or Redis lost it, as the
// embedded Redis does at every restart) is first moved past the highest
// number claimed: otherwise every create under way at once would take a
// number claimed before, and each refused claim fails the group commit it
// shares (256 rows of an import after a restart kept the writer busy for
// over 30 s, each caller's writes running alone).
//
// One caller restores the counter while the others wait and then count on
// from it, so that the counter is set once, not raced by 256 callers each
// setting it from a read of the claims taken before the others' claims.
func (s *Service) nextNumber(ctx context.Context, tenant string) (int64, error) {
	seq, err := s.counters.NextIfSet(ctx, customerCounter(tenant))
	if err != nil || seq > 0 {
		return seq, err
	}
	s.restoringNumbers.Lock()
	defer s.restoringNumbers.Unlock()
	if seq, err := s.counters.NextIfSet(ctx, customerCounter(tenant)); err != nil || seq > 0 {
		return seq, err // restored meanwhile
	}
	if _, err := s.raisePastClaims(ctx, tenant); err != nil {
		return 0, err
	}
	return s.counters.Next(ctx, customerCounter(tenant))
}

// counterPastClaims moves tenant's customer-number counter past the highest
// number ever claimed, after a claim found the counter behind.
func (s *Service) counterPastClaims(ctx context.Context, tenant string) error {
	highest, err := s.raisePastClaims(ctx, tenant)
	if err == nil {
		s.log.WarnContext(ctx, "customer-number counter was behind; resuming after the highest claimed", "tenant", tenant, "highest", highest)
	}
	return err
}

// raisePastClaims moves tenant's customer-number counter up to the highest
// number claimed, which it returns.
func (s *Service) raisePastClaims(ctx context.Context, tenant string) (int64, error) {
	highest, err := s.store.HighestCustomerNumber(ctx, tenant)
	if err != nil {
		return 0, err
	}
	return highest, s.counters.AtLeast(ctx, customerCounter(tenant), highest)
}

// Assign moves a customer to another owner, with its records and open tasks.
// Admins assign to anyone active in the tenant, managers within their teams.
func (s *Service) Assign(ctx context.Context, a models.Actor, id, ownerID string) (models.Customer, error) {
	if a.Role == models.RoleRep {
		return models.Customer{}, &models.ForbiddenError{Reason: "reps cannot assign customers; ask your manager"}
	}
	owner, err := s.store.User(ctx, a.TenantID, ownerID)
	if errors.Is(err, models.ErrNotFound) || (err == nil && (!a.CanSeeUser(owner) || !owner.Active)) {
		return models.Customer{}, &models.ValidationError{Fields: []models.FieldError{{Field: "owner_id", Message: "must be an active user you manage"}}}
	}
	if err != nil {
		return models.Customer{}, err
	}
	return s.moveCustomer(ctx, a, id, owner.ID, owner.TeamID, "assigned", func(c *models.Customer) error {
		return a.CanEditOwned(c.TenantID, c.OwnerID, c.TeamID)
	})
}

// Claim takes a customer from the public pool for the signed-in rep. Of two
// reps claiming at once, one gets it; the other gets a conflict.
func (s *Service) Claim(ctx context.Context, a models.Actor, id string) (models.Customer, error) {
	return s.moveCustomer(ctx, a, id, a.UserID, a.TeamID, "claimed from the pool", func(c *models.Customer) error {
		if c.OwnerID != "" {
			return fmt.Errorf("customer %s is not in the pool: %w", id, models.ErrConflict)
		}
		return nil
	})
}

// Release returns a customer to the public pool.
func (s *Service) Release(ctx context.Context, a models.Actor, id string) (models.Customer, error) {
	return s.moveCustomer(ctx, a, id, "", "", "released to the pool", func(c *models.Customer) error {
		if c.OwnerID == "" {
			return fmt.Errorf("customer %s is already in the pool: %w", id, models.ErrConflict)
		}
		return a.CanEditOwned(c.TenantID, c.OwnerID, c.TeamID)
	})
}

// moveCustomer changes a customer's owner after allowed accepts it (allowed
// also decides visibility, answering models.ErrNotFound), then moves
// its records along (their owner decides who sees them) and hands its open
// tasks to the new owner.
func (s *Service) moveCustomer(ctx context.Context, a models.Actor, id, ownerID, teamID, reason string, allowed func(c *models.Customer) error) (models.Customer, error) {
	c, err := s.Customers.mutate(ctx, a, id, "assign", func(w *write[models.Customer]) error {
		c := w.rec
		if c.Deleted() {
			return models.ErrNotFound
		}
		if err := allowed(c); err != nil {
			return err
		}
		if c.OwnerID == ownerID {
			return nil
		}
		c.OwnerHistory = append(c.OwnerHistory, models.OwnerChange{From: c.OwnerID, To: ownerID, By: a.UserID, At: w.now, Reason: reason})
		c.Reown(ownerID, teamID)
		at := w.now
		c.AssignedAt = &at
		return nil
	})
	if err != nil {
		return c, err
	}
	return c, s.followCustomer(ctx, a, c)
}

// followCustomer brings every record of customer c to c's owner and team, and
// gives its open tasks to the owner.
func (s *Service) followCustomer(ctx context.Context, a models.Actor, c models.Customer) error {
	return s.eachChild(ctx, a.TenantID, c.ID, func(kids childSet) error {
		return kids.edit(ctx, a, "assign", func(m *models.Meta, rec any) {
			m.Reown(c.OwnerID, c.TeamID)
			if t, ok := rec.(*models.Task); ok && t.Status == models.TaskOpen && c.OwnerID != "" {
				t.AssigneeID = c.OwnerID
			}
		})
	})
}

// deleteChildren tombstones every record of a deleted customer.
func (s *Service) deleteChildren(ctx context.Context, a models.Actor, customerID string) error {
	return s.eachChild(ctx, a.TenantID, customerID, func(kids childSet) error {
		return kids.edit(ctx, a, "delete", func(m *models.Meta, _ any) {
			at := s.now().UTC()
			m.DeletedAt = &at
		})
	})
}

// Duplicates lists customers flagged as possible duplicates.
func (s *Service) Duplicates(ctx context.Context, a models.Actor, o ListOptions) (Page[models.Customer], error) {
	if o.Filters == nil {
		o.Filters = map[string]string{}
	}
	o.Filters["duplicate"] = "true"
	return s.Customers.List(ctx, a, o)
}

// ReclaimIdle returns to the public pool the customers of tenant whose owner
// logged no interaction with them for the tenant's pool_reclaim_days (counted
// from the later of the last interaction and the assignment). It returns how
// many it moved. Any replica may run it: each move is an ordinary versioned
// change, so two runs at once move each customer once.
func (s *Service) ReclaimIdle(ctx context.Context, tenant string) (int, error) {
	st, err := s.settings(ctx, tenant)
	if err != nil || st.PoolReclaimDays == 0 {
		return 0, err
	}
	cutoff := s.now().UTC().AddDate(0, 0, -st.PoolReclaimDays)
	var idle []models.Customer
	q := models.Query{Tenant: tenant, Scope: models.Scope{All: true}, Limit: 1000, Conds: []models.Cond{
		{Field: "owner_id", Op: models.OpNe, Value: ""},
		{Field: "assigned_at", Op: models.OpLt, Value: cutoff},
	}}
	if err := s.store.Find(ctx, store.Customers, q, &idle); err != nil {
		return 0, err
	}
	system := models.Actor{TenantID: tenant, UserID: "system", Role: models.RoleAdmin}
	reason := fmt.Sprintf("no interaction for %d days", st.PoolReclaimDays)
	moved := 0
	for _, c := range idle {
		if c.LastInteractionAt != nil && !c.LastInteractionAt.Before(cutoff) {
			continue
		}
		_, err := s.moveCustomer(ctx, system, c.ID, "", "", reason, func(cur *models.Customer) error {
			// Re-check on the fresh copy: an interaction may have arrived since.
			if cur.OwnerID == "" || (cur.LastInteractionAt != nil && !cur.LastInteractionAt.Before(cutoff)) ||
				(cur.AssignedAt != nil && !cur.AssignedAt.Before(cutoff)) {
				return errSkip
			}
			return nil
		})
		switch {
		case errors.Is(err, errSkip):
		case err != nil:
			return moved, err
		default:
			moved++
		}
	}
	return moved, nil
}

var errSkip = errors.New("skip")

// ReclaimAll runs ReclaimIdle for every tenant that turned it on and returns
// how many customers went back to the pool. Every replica may run it; the moves
// are versioned writes, so overlapping runs move each customer once.
func (s *Service) ReclaimAll(ctx context.Context) (int, error) {
	tenants, err := s.store.TenantsWithPoolReclaim(ctx)
	if err != nil {
		return 0, err
	}
	moved := 0
	for _, t := range tenants {
		n, err := s.ReclaimIdle(ctx, t)
		moved += n
		if err != nil {
			return moved, fmt.Errorf("pool reclaim of tenant %s: %w", t, err)
		}
	}
	return moved, nil
}

// Merge folds the customers fromIDs into the customer id: their records move to
// it, its empty fields are filled from theirs, and they become tombstones that
// name it in merged_into, so a device holding an old id can follow it.
// Interrupted, it can be run again with the same ids to finish.
func (s *Service) Merge(ctx context.Context, a models.Actor, id string, fromIDs []string) (models.Customer, error) {
	if len(fromIDs) == 0 || len(fromIDs) > 20 || slices.Contains(fromIDs, id) {
		return models.Customer{}, &models.ValidationError{Fields: []models.FieldError{{Field: "from", Message: "name 1 to 20 other customers to merge into this one"}}}
	}
	survivor, err := s.Customers.Get(ctx, a, id)
	if err != nil {
		return survivor, err
	}
	if survivor.Deleted() {
		return survivor, models.ErrNotFound
	}
	if err := a.CanEditOwned(survivor.TenantID, survivor.OwnerID, survivor.TeamID); err != nil {
		return survivor, err
	}
	var others []models.Customer
	v := &models.ValidationError{}
	for i, fid := range fromIDs {
		o, err := s.Customers.load(ctx, a.TenantID, fid)
		if errors.Is(err, models.ErrNotFound) || (err == nil && !a.CanSeeOwned(o.TenantID, o.OwnerID, o.TeamID)) {
			v.Add(fmt.Sprintf("from[%d]", i), "no customer with id %q", fid)
			continue
		}
		if err != nil {
			return survivor, err
		}
		switch {
		case o.MergedInto != "" && o.MergedInto != id:
			v.Add(fmt.Sprintf("from[%d]", i), "was already merged into %s", o.MergedInto)
		case o.Deleted() && o.MergedInto == "":
			v.Add(fmt.Sprintf("from[%d]", i), "is deleted")
		}
		if err := a.CanEditOwned(o.TenantID, o.OwnerID, o.TeamID); err != nil {
			return survivor, err
		}
		others = append(others, o)
	}
	if err := v.Err(); err != nil {
		return survivor, err
	}
	for _, o := range others {
		if err := s.eachChild(ctx, a.TenantID, o.ID, func(kids childSet) error {
			return kids.edit(ctx, a, "merge", func(m *models.Meta, rec any) {
				any(rec).(interface{ SetParent(string) }).SetParent(survivor.ID)
				m.Reown(survivor.OwnerID, survivor.TeamID)
			})
		}); err != nil {
			return survivor, err
		}
	}
	// Tombstone the others before the survivor is checked for duplicates
	// again, or it would match the very customers merged into it.
	for _, o := range others {
		_, err := s.Customers.mutate(ctx, a, o.ID, "merge", func(w *write[models.Customer]) error {
			w.rec.MergedInto = id
			if !w.rec.Deleted() {
				at := w.now
				w.rec.DeletedAt = &at
			}
			return nil
		})
		if err != nil {
			return survivor, err
		}
	}
	merged, err := s.Customers.mutate(ctx, a, id, "merge", func(w *write[models.Customer]) error {
		for _, o := range others {
			fillEmpty(w.rec, &o)
		}
		if w.rec.Duplicate != nil {
			w.rec.Duplicate.CandidateIDs = slices.DeleteFunc(w.rec.Duplicate.CandidateIDs, func(c string) bool { return slices.Contains(fromIDs, c) })
			if len(w.rec.Duplicate.CandidateIDs) == 0 {
				w.rec.Duplicate = nil
			}
		}
		// The ledger moved with the entries; the balance is summed from it, so a
		// merge run again after an interruption does not count points twice.
		loyalty, err := s.settled(ctx, w, "")
		if err != nil {
			return err
		}
		w.rec.Loyalty = loyalty
		// Prepare again: phones, e-mails and tags were unioned, so the keys change.
		w.flagDuplicates = true
		return s.prepareCustomer(ctx, w)
	})
	if err != nil {
		return merged, err
	}
	if err := s.refreshDerived(ctx, a.TenantID, id); err != nil {
		return merged, err
	}
	return s.Customers.Get(ctx, a, id)
}

// fillEmpty copies into dst the fields it lacks from src, and unions the lists.
func fillEmpty(dst, src *models.Customer) {
	d, s := &dst.CustomerFields, &src.CustomerFields
	for _, p := range []struct{ to, from *string }{
		{&d.CompanyName, &s.CompanyName}, {&d.Title, &s.Title}, {&d.Industry, &s.Industry},
		{&d.CompanySize, &s.CompanySize}, {&d.Region, &s.Region}, {&d.Gender, &s.Gender},
		{&d.BirthDate, &s.BirthDate}, {&d.NationalID, &s.NationalID}, {&d.Source, &s.Source},
		{&d.NeedType, &s.NeedType}, {&d.ProductNeeds, &s.ProductNeeds}, {&d.ServiceNeeds, &s.ServiceNeeds},
		{&d.ValueTier, &s.ValueTier},
	} {
		if *p.to == "" {
			*p.to = *p.from
		}
	}
	if d.Address == (models.Address{}) {
		d.Address = s.Address
	}
	d.Phones = append(d.Phones, s.Phones...)
	d.Emails = append(d.Emails, s.Emails...)
	d.Social = append(d.Social, s.Social...)
	d.Tags = append(d.Tags, s.Tags...)
	if d.CustomFields == nil {
		d.CustomFields = map[string]any{}
	}
	for k, v := range s.CustomFields {
		if _, ok := d.CustomFields[k]; !ok {
			d.CustomFields[k] = v
		}
	}
	if src.LastInteractionAt != nil && (dst.LastInteractionAt == nil || src.LastInteractionAt.After(*dst.LastInteractionAt)) {
		dst.LastInteractionAt = src.LastInteractionAt
	}
}

// TimelineItem is one event in a customer's history.
type TimelineItem struct {
	At      time.Time `json:"at"`
	Kind    string    `json:"kind"`
	ID      string    `json:"id,omitempty"`
	Summary string    `json:"summary"`
	Record  any       `json:"record,omitempty"`
}

// maxTimelinePerKind bounds each kind of record in a timeline.
const maxTimelinePerKind = 200

// Timeline returns a customer's interactions, tasks, orders, payments, tickets,
// surveys, loyalty entries, stage and owner changes, newest first.
func (s *Service) Timeline(ctx context.Context, a models.Actor, id string) ([]TimelineItem, error) {
	c, err := s.Customers.Get(ctx, a, id)
	if err != nil {
		return nil, err
	}
	var items []TimelineItem
	for _, ch := range c.StageHistory {
		items = append(items, TimelineItem{At: ch.At, Kind: "stage_change", Summary: strings.TrimPrefix(ch.From+" → "+ch.To, " → ")})
	}
	for _, ch := range c.OwnerHistory {
		items = append(items, TimelineItem{At: ch.At, Kind: "owner_change", Summary: ch.Reason})
	}
	err = s.eachChild(ctx, a.TenantID, id, func(kids childSet) error {
		for _, k := range kids.items() {
			items = append(items, k)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(items, func(x, y TimelineItem) int { return y.At.Compare(x.At) })
	return items, nil
}

// keepMaskedNationalID recognises the masked national ID non-admins read
// (110***********002X) when it comes back in an edit: it means "unchanged",
// and the stored number stays. Any other value with a mask's asterisks is
// refused, so a masked number never replaces a real one.
func keepMaskedNationalID(c, old *models.Customer) error {
	if !strings.Contains(c.NationalID, "*") {
		return nil
	}
	if old != nil && old.NationalID != "" && c.NationalID == models.MaskNationalID(old.NationalID) {
		c.NationalID = old.NationalID
		return nil
	}
	return &models.ValidationError{Fields: []models.FieldError{{Field: "national_id",
		Message: "is a masked value; send the whole number, or leave the field out to keep the stored one"}}}
}
