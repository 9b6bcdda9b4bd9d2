package crm

// The points ledger and the customer's balance.
//
// The balance is derived from the stored ledger: every loyalty write ends by
// summing the customer's entries (settleLoyalty) inside the customer's
// versioned update, which reads the customer, then the ledger, and commits
// only if the customer did not change meanwhile. So a committed balance
// counts exactly the entries stored when it was summed, and a sum read before
// an entry was stored cannot commit after a sum that counts it. The balance
// never moves ahead of an entry.
//
// FerretDB has no multi-document transaction, so "a redemption never takes
// the balance below zero" cannot check the balance and insert the entry in
// one step, nor can an entry and the balance that counts it be stored in
// one. So every entry is held on its customer first (Loyalty.Held): an entry
// that takes points holds them, in the atomic update that checks they are
// available (the ledger's sum less the points held), and one that adds
// points holds none, which only marks it as being written; then it is
// inserted under its unique id; then it is settled: the sum counts it and
// its hold goes. Of two redemptions racing for the last points, the second
// to hold finds them held.
//
// A write cut off between its hold and its settle (a crash, a timeout)
// leaves the hold, so a balance that may not count one of the customer's
// entries always has a hold beside it, and the customers holding anything
// are few and found by an index of their own. SettleHolds settles them: at
// every start-up, before the first request, and periodically for processes
// that never came back. A hold whose entry is not stored stays until a
// settle finds it stored, or until it is holdExpiry old: the insert runs
// within the sync sequencer's lease (see Service.stamped), so by then it can
// no longer commit. At the start-up of a process alone on its database,
// every hold belongs to a write that died with the process before it, and
// all go at once.
//
// A sum reads every entry of the customer, by the (tenant, customer) index
// every child list uses: about 50 µs an entry on embedded SQLite, so 50 ms
// an earn and twice that a redemption for a customer with 1,000 entries. In
// exchange a balance that an earlier version left off the ledger lends no
// points and is right again after the customer's next loyalty write.
//
// An entry's id makes its create idempotent: a create sent again (a push
// retried after a lost response) finds the stored entry, is accepted
// unchanged and settles the customer, which also finishes what a crash left
// undone; a create under an id that another record holds (other content,
// another customer or tenant) is refused, and releases what it held.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/fieldcrm/fieldcrm/internal/store"
	"github.com/fieldcrm/fieldcrm/models"
)

func (s *Service) loyaltyHooks() hooks[models.LoyaltyEntry] {
	return hooks[models.LoyaltyEntry]{
		appendOnly: true,
		same:       func(stored, sent *models.LoyaltyEntry) bool { return stored.SameAs(sent) },
		prepare: func(ctx context.Context, w *write[models.LoyaltyEntry]) error {
			e := w.rec
			if err := e.Prepare(); err != nil {
				return err
			}
			c, err := s.parentOf(ctx, w.actor, &e.Meta, &e.ChildFields, nil)
			if err != nil {
				return err
			}
			e.BalanceAfter = c.Loyalty.Available() + e.Delta() // holdPoints says it exactly for what it holds
			return nil
		},
		reserve: s.holdPoints,
		settle: func(ctx context.Context, w *write[models.LoyaltyEntry]) error {
			return s.settleLoyalty(ctx, w.actor, w.rec.CustomerID, w.rec.ID)
		},
		filters: withChild(map[string]filter{"kind": described(equals("kind", models.PointsKinds...), "kind of entry")}),
		timeline: func(e *models.LoyaltyEntry) (time.Time, string) {
			return e.CreatedAt, fmt.Sprintf("points %s %d: %s", e.Kind, e.Points, e.Reason)
		},
	}
}

// holdExpiry is how old a hold must be for its entry to be past storing. The
// insert must finish within the sequencer's lease; holds older than twice
// that, and ten minutes at least, belong to writes that ended.
func (s *Service) holdExpiry() time.Duration { return max(10*time.Minute, 2*s.seq.Lease()) }

// holdPoints holds the entry on its customer: the points it takes, if there
// are that many available, or none for an entry that adds points (see the
// file's comment). Holding is idempotent by entry id, so a create sent again
// does not hold twice.
func (s *Service) holdPoints(ctx context.Context, w *write[models.LoyaltyEntry]) error {
	e := w.rec
	takes := max(-e.Delta(), 0)
	_, err := s.Customers.mutate(ctx, w.actor, e.CustomerID, "loyalty", func(cw *write[models.Customer]) error {
		l := cw.rec.Loyalty
		if takes > 0 {
			// Summed here too, not only trusted: a balance that an earlier
			// version moved ahead of its ledger must not lend points.
			settled, ledger, err := s.settledLedger(ctx, cw, "", time.Time{})
			if err != nil {
				return err
			}
			if slices.ContainsFunc(ledger, func(stored models.LoyaltyEntry) bool { return stored.ID == e.ID }) {
				// Stored already: a create sent again that came after the
				// first one settled. It holds nothing; the insert finds the
				// entry and accepts or refuses the create by its content.
				e.BalanceAfter = settled.Available()
				return nil
			}
			l = settled
		}
		i := slices.IndexFunc(l.Held, func(h models.PointsHold) bool { return h.EntryID == e.ID })
		switch {
		case i >= 0 && l.Held[i].Points != takes:
			return &models.ValidationError{Fields: []models.FieldError{{Field: "id",
				Message: "is taken by another entry being written; send a new one under a new id"}}}
		case i < 0:
			if available := l.Available(); available-takes < 0 {
				return &models.ValidationError{Fields: []models.FieldError{{Field: "points",
					Message: fmt.Sprintf("the customer has only %d points", max(available, 0))}}}
			}
			l.Held = append(l.Held, models.PointsHold{EntryID: e.ID, Points: takes, At: cw.now})
		}
		e.BalanceAfter = l.Available() + max(e.Delta(), 0)
		cw.rec.Loyalty = l
		return nil
	})
	return err
}

// SettleHolds settles every customer holding an entry, in every tenant, and
// returns how many it settled: the balances a write cut off between its hold
// and its settle left without an entry (see the file's comment). Holds taken
// before deadBefore go even if their entry is not stored: a process alone on
// its database passes its start, as every hold then belongs to a write that
// died with the process before it. The zero time keeps those holds until they
// expire. Any process may run it at any time: settling is what every loyalty
// write does, and it leaves the holds of writes under way.
func (s *Service) SettleHolds(ctx context.Context, deadBefore time.Time) (int, error) {
	tenants, err := s.store.TenantIDs(ctx)
	if err != nil {
		return 0, err
	}
	settled := 0
	for _, tenant := range tenants {
		var holding []models.Customer
		q := models.Query{Tenant: tenant, Scope: models.Scope{All: true},
			Conds: []models.Cond{{Field: "loyalty.held", Op: models.OpNe, Value: nil}}}
		if err := s.store.Find(ctx, store.Customers, q, &holding); err != nil {
			return settled, fmt.Errorf("find the customers holding points in tenant %s: %w", tenant, err)
		}
		system := models.Actor{TenantID: tenant, UserID: "system", Role: models.RoleAdmin}
		for _, c := range holding {
			err := s.settleCustomer(ctx, system, c.ID, "", deadBefore)
			if err != nil && !errors.Is(err, models.ErrNotFound) {
				return settled, err
			}
			settled++
		}
	}
	return settled, nil
}

// settleLoyalty derives a customer's balance from its stored ledger and
// drops the holds that are over, release's among them (see settled).
func (s *Service) settleLoyalty(ctx context.Context, a models.Actor, customerID, release string) error {
	return s.settleCustomer(ctx, a, customerID, release, time.Time{})
}

// settleCustomer is settleLoyalty that also drops the holds taken before
// deadBefore (see SettleHolds).
func (s *Service) settleCustomer(ctx context.Context, a models.Actor, customerID, release string, deadBefore time.Time) error {
	_, err := s.Customers.mutate(ctx, a, customerID, "loyalty", func(cw *write[models.Customer]) error {
		l, _, err := s.settledLedger(ctx, cw, release, deadBefore)
		cw.rec.Loyalty = l
		return err
	})
	if err != nil {
		return fmt.Errorf("settle the points of customer %s: %w", customerID, err)
	}
	return nil
}

// settled reads the ledger of the customer cw writes, after cw read the
// customer (which is what makes the versioned commit of the sum safe), and
// returns the customer's loyalty state derived from it.
func (s *Service) settled(ctx context.Context, cw *write[models.Customer], release string) (models.Loyalty, error) {
	l, _, err := s.settledLedger(ctx, cw, release, time.Time{})
	return l, err
}

// settledLedger is settled that also returns the ledger it summed, and drops
// the holds taken before deadBefore as well as the expired ones.
func (s *Service) settledLedger(ctx context.Context, cw *write[models.Customer], release string, deadBefore time.Time) (models.Loyalty, []models.LoyaltyEntry, error) {
	var ledger []models.LoyaltyEntry
	// Every entry counts, so no limit; the query is the one child lists use
	// (tenant and customer_id, an index on every engine).
	if err := s.store.Find(ctx, store.LoyaltyEntries, childQuery(cw.rec.TenantID, cw.rec.ID, 0), &ledger); err != nil {
		return cw.rec.Loyalty, nil, fmt.Errorf("read the points ledger of customer %s: %w", cw.rec.ID, err)
	}
	expired := cw.now.Add(-s.holdExpiry())
	if deadBefore.After(expired) {
		expired = deadBefore
	}
	return cw.rec.Loyalty.Settled(ledger, release, expired, cw.settings), ledger, nil
}
