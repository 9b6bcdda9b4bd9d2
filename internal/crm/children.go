package crm

import (
	"context"
	"errors"
	"fmt"

	"github.com/fieldcrm/fieldcrm/models"
)

// childSet is the records of one collection that belong to one customer.
type childSet interface {
	// edit applies change to each record as a versioned, audited write.
	edit(ctx context.Context, a models.Actor, action string, change func(m *models.Meta, rec any)) error
	items() []TimelineItem
}

type kids[R any] struct {
	r    *Records[R]
	recs []R
}

func (k kids[R]) edit(ctx context.Context, a models.Actor, action string, change func(m *models.Meta, rec any)) error {
	for i := range k.recs {
		id := meta(&k.recs[i]).ID
		_, err := k.r.mutate(ctx, a, id, action, func(w *write[R]) error {
			change(meta(w.rec), w.rec)
			return nil
		})
		if err != nil {
			return fmt.Errorf("%s %s %s: %w", action, k.r.coll, id, err)
		}
	}
	return nil
}

func (k kids[R]) items() []TimelineItem {
	if k.r.h.timeline == nil {
		return nil
	}
	out := make([]TimelineItem, 0, len(k.recs))
	for i := range k.recs {
		at, summary := k.r.h.timeline(&k.recs[i])
		out = append(out, TimelineItem{At: at, Kind: k.r.coll, ID: meta(&k.recs[i]).ID, Summary: summary, Record: k.recs[i]})
	}
	return out
}

// maxChildren bounds how many records of one kind a customer's cascade touches.
const maxChildren = 10_000

func childrenOf[R any](ctx context.Context, r *Records[R], tenant, customerID string, limit int) (kids[R], error) {
	var recs []R
	if err := r.svc.store.Find(ctx, r.coll, childQuery(tenant, customerID, limit), &recs); err != nil {
		return kids[R]{}, err
	}
	return kids[R]{r: r, recs: recs}, nil
}

// childQuery finds the live records of one customer, whoever owns them.
func childQuery(tenant, customerID string, limit int) models.Query {
	return models.Query{Tenant: tenant, Scope: models.Scope{All: true}, Limit: limit,
		Conds: []models.Cond{{Field: "customer_id", Op: models.OpEq, Value: customerID}}}
}

// eachChild calls fn with the live records of each child collection of a customer.
func (s *Service) eachChild(ctx context.Context, tenant, customerID string, fn func(childSet) error) error {
	sets := []func() (childSet, error){
		func() (childSet, error) { return childrenOf(ctx, s.Contacts, tenant, customerID, maxChildren) },
		func() (childSet, error) { return childrenOf(ctx, s.Interactions, tenant, customerID, maxChildren) },
		func() (childSet, error) { return childrenOf(ctx, s.Tasks, tenant, customerID, maxChildren) },
		func() (childSet, error) { return childrenOf(ctx, s.Orders, tenant, customerID, maxChildren) },
		func() (childSet, error) { return childrenOf(ctx, s.Payments, tenant, customerID, maxChildren) },
		func() (childSet, error) { return childrenOf(ctx, s.Tickets, tenant, customerID, maxChildren) },
		func() (childSet, error) { return childrenOf(ctx, s.Surveys, tenant, customerID, maxChildren) },
		func() (childSet, error) { return childrenOf(ctx, s.LoyaltyEntries, tenant, customerID, maxChildren) },
	}
	for _, load := range sets {
		set, err := load()
		if err != nil {
			return err
		}
		if err := fn(set); err != nil {
			return err
		}
	}
	return nil
}

// parentOf checks the customer a child record names and copies its owner and
// team onto a new record, which is how children inherit visibility. A child
// never changes customer through an edit (merges move them).
func (s *Service) parentOf(ctx context.Context, a models.Actor, m *models.Meta, child, old *models.ChildFields) (models.Customer, error) {
	bad := func(msg string) error {
		return &models.ValidationError{Fields: []models.FieldError{{Field: "customer_id", Message: msg}}}
	}
	if old != nil {
		// An edit keeps the record where it is; whoever may edit the record (an
		// assignee from another team, too) needs no rights on the customer.
		if old.CustomerID != child.CustomerID {
			return models.Customer{}, bad("cannot be changed; merge the customers instead")
		}
		return s.Customers.load(ctx, a.TenantID, child.CustomerID)
	}
	c, err := s.Customers.load(ctx, a.TenantID, child.CustomerID)
	if errors.Is(err, models.ErrNotFound) || (err == nil && (c.Deleted() || !a.CanSeeOwned(c.TenantID, c.OwnerID, c.TeamID))) {
		return c, bad(fmt.Sprintf("no customer with id %q", child.CustomerID))
	}
	if err != nil {
		return c, err
	}
	if err := a.CanEditOwned(c.TenantID, c.OwnerID, c.TeamID); err != nil {
		return c, err
	}
	m.OwnerID, m.TeamID = c.OwnerID, c.TeamID
	return c, nil
}

// oldChild returns the child fields of the stored record, or nil on create.
func oldChild[R any](w *write[R], get func(*R) *models.ChildFields) *models.ChildFields {
	if w.old == nil {
		return nil
	}
	return get(w.old)
}

// assignedOrOwned lets the assignee of a task or ticket see it besides those who
// see its customer.
func assignedOrOwned(a models.Actor, m *models.Meta, assignee string) bool {
	return (m.TenantID == a.TenantID && assignee == a.UserID) || a.CanSeeOwned(m.TenantID, m.OwnerID, m.TeamID)
}

// checkAssignee refuses an assignee the actor may not give work to.
func (s *Service) checkAssignee(ctx context.Context, a models.Actor, id string) error {
	u, err := s.store.User(ctx, a.TenantID, id)
	if errors.Is(err, models.ErrNotFound) || (err == nil && (!u.Active || !a.CanSeeUser(u))) {
		return &models.ValidationError{Fields: []models.FieldError{{Field: "assignee_id", Message: "must be yourself or an active user you manage"}}}
	}
	return err
}
