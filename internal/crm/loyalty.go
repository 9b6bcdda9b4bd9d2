package crm

// The points ledger and the customer's balance.
//
// The balance is derived from the stored ledger: every loyalty write ends by
// summing the customer's entries (settleLoyalty) inside the customer's
// versioned update, which reads the customer, then the ledger, and commits
// only if the customer did not change meanwhile. So a committed balance
// counts exactly the entries stored when it was summed, and a sum read before
// an entry was stored cannot commit after a sum that counts it. The balance
// never moves ahead of an entry: a retried, racing or refused create, or a
// crash at any point, leaves at worst a balance that does not count a stored
// entry yet, and the next loyalty write of that customer counts it.
//
// FerretDB has no multi-document transaction, so "a redemption never takes
// the balance below zero" cannot check the balance and insert the entry in
// one step. An entry that takes points first holds them on the customer
// (Loyalty.Held), in the atomic update that checks they are available (the
// ledger's sum less the points held); then it is inserted under its unique
// id; then it is settled: the sum counts it and its hold goes. Of two
// redemptions racing for the last points, the second to hold finds them
// held. A hold whose write ended with its outcome unknown (a crash or a
// timeout between hold and insert) stays until a settle finds its entry
// stored (and counts it), or until it is holdExpiry old: the insert runs
// within the sync sequencer's lease (see Service.stamped), so by then it can
// no longer commit. Entries that add points hold nothing.
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
		filters: withChild(map[string]filter{"kind": equals("kind", models.PointsEarn, models.PointsRedeem, models.PointsAdjust, models.PointsExpire)}),
		timeline: func(e *models.LoyaltyEntry) (time.Time, string) {
			return e.CreatedAt, fmt.Sprintf("points %s %d: %s", e.Kind, e.Points, e.Reason)
		},
	}
}

// holdExpiry is how old a hold must be for its entry to be past storing. The
// insert must finish within the sequencer's lease; holds older than twice
// that, and ten minutes at least, belong to writes that ended.
func (s *Service) holdExpiry() time.Duration { return max(10*time.Minute, 2*s.seq.Lease()) }

// holdPoints holds on the customer the points an entry takes, if there are
// that many available; an entry that adds points holds nothing. Holding is
// idempotent by entry id, so a create sent again does not hold twice.
func (s *Service) holdPoints(ctx context.Context, w *write[models.LoyaltyEntry]) error {
	e := w.rec
	if e.Delta() >= 0 {
		return nil
	}
	_, err := s.Customers.mutate(ctx, w.actor, e.CustomerID, "loyalty", func(cw *write[models.Customer]) error {
		// Summed here too, not only trusted: a balance that an earlier
		// version moved ahead of its ledger must not lend points.
		l, ledger, err := s.settledLedger(ctx, cw, "")
		if err != nil {
			return err
		}
		if slices.ContainsFunc(ledger, func(stored models.LoyaltyEntry) bool { return stored.ID == e.ID }) {
			// Stored already: a create sent again that came after the first
			// one settled. It holds nothing; the insert finds the entry and
			// accepts or refuses the create by its content.
			e.BalanceAfter = l.Available()
			return nil
		}
		i := slices.IndexFunc(l.Held, func(h models.PointsHold) bool { return h.EntryID == e.ID })
		switch {
		case i >= 0 && l.Held[i].Points != -e.Delta():
			return &models.ValidationError{Fields: []models.FieldError{{Field: "id",
				Message: "is taken by another entry being written; send a new one under a new id"}}}
		case i < 0:
			if available := l.Available(); available+e.Delta() < 0 {
				return &models.ValidationError{Fields: []models.FieldError{{Field: "points",
					Message: fmt.Sprintf("the customer has only %d points", max(available, 0))}}}
			}
			l.Held = append(l.Held, models.PointsHold{EntryID: e.ID, Points: -e.Delta(), At: cw.now})
		}
		e.BalanceAfter = l.Available()
		cw.rec.Loyalty = l
		return nil
	})
	return err
}

// settleLoyalty derives a customer's balance from its stored ledger and
// drops the holds that are over, release's among them (see settled).
func (s *Service) settleLoyalty(ctx context.Context, a models.Actor, customerID, release string) error {
	_, err := s.Customers.mutate(ctx, a, customerID, "loyalty", func(cw *write[models.Customer]) error {
		l, err := s.settled(ctx, cw, release)
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
	l, _, err := s.settledLedger(ctx, cw, release)
	return l, err
}

// settledLedger is settled that also returns the ledger it summed.
func (s *Service) settledLedger(ctx context.Context, cw *write[models.Customer], release string) (models.Loyalty, []models.LoyaltyEntry, error) {
	var ledger []models.LoyaltyEntry
	// Every entry counts, so no limit; the query is the one child lists use
	// (tenant and customer_id, an index on every engine).
	if err := s.store.Find(ctx, store.LoyaltyEntries, childQuery(cw.rec.TenantID, cw.rec.ID, 0), &ledger); err != nil {
		return cw.rec.Loyalty, nil, fmt.Errorf("read the points ledger of customer %s: %w", cw.rec.ID, err)
	}
	return cw.rec.Loyalty.Settled(ledger, release, cw.now.Add(-s.holdExpiry()), cw.settings), ledger, nil
}
