package crm

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"time"

	"github.com/fieldcrm/fieldcrm/models"
	"github.com/fieldcrm/fieldcrm/sync/store"
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
func childQuery(tenant, customerID string, limit int) store.Query {
	return store.Query{Tenant: tenant, Scope: models.Scope{All: true}, Limit: limit,
		Conds: []store.Cond{{Field: "customer_id", Op: store.Eq, Value: customerID}}}
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

func (s *Service) contactHooks() hooks[models.Contact] {
	return hooks[models.Contact]{
		prepare: func(ctx context.Context, w *write[models.Contact]) error {
			if err := w.rec.Prepare(w.settings); err != nil {
				return err
			}
			c, err := s.parentOf(ctx, w.actor, &w.rec.Meta, &w.rec.ChildFields, oldChild(w, func(r *models.Contact) *models.ChildFields { return &r.ChildFields }))
			if err == nil && c.Kind != models.KindCompany {
				return &models.ValidationError{Fields: []models.FieldError{{Field: "customer_id", Message: "contacts belong to company customers"}}}
			}
			return err
		},
		after: func(ctx context.Context, w *write[models.Contact]) error {
			if !w.rec.IsPrimary || (w.old != nil && w.old.IsPrimary) {
				return nil
			}
			// One primary contact per customer: the new one takes over.
			others, err := childrenOf(ctx, s.Contacts, w.actor.TenantID, w.rec.CustomerID, maxChildren)
			if err != nil {
				return err
			}
			others.recs = slices.DeleteFunc(others.recs, func(c models.Contact) bool { return c.ID == w.rec.ID || !c.IsPrimary })
			return others.edit(ctx, w.actor, "update", func(_ *models.Meta, rec any) { rec.(*models.Contact).IsPrimary = false })
		},
		filters:  withChild(map[string]filter{"q": contains("name")}),
		sorts:    map[string]string{"name": "name"},
		timeline: func(c *models.Contact) (time.Time, string) { return c.CreatedAt, "contact " + c.Name },
	}
}

func (s *Service) interactionHooks() hooks[models.Interaction] {
	return hooks[models.Interaction]{
		prepare: func(ctx context.Context, w *write[models.Interaction]) error {
			if err := w.rec.Prepare(w.now); err != nil {
				return err
			}
			if _, err := s.parentOf(ctx, w.actor, &w.rec.Meta, &w.rec.ChildFields, oldChild(w, func(r *models.Interaction) *models.ChildFields { return &r.ChildFields })); err != nil {
				return err
			}
			var was string
			if w.old != nil {
				was = w.old.ContactID
			}
			if err := reference(ctx, s.Contacts, w.actor, "contact_id", w.rec.ContactID, was, w.rec.CustomerID, w.old != nil); err != nil {
				return err
			}
			if n := w.rec.NextStep; n != nil {
				if w.old != nil && w.old.NextStep != nil {
					n.TaskID = w.old.NextStep.TaskID // the task exists; edit it directly
				} else {
					n.TaskID = models.NewID()
				}
			}
			return nil
		},
		after: func(ctx context.Context, w *write[models.Interaction]) error {
			i := w.rec
			if n := i.NextStep; n != nil && (w.old == nil || w.old.NextStep == nil) {
				task := models.Task{ChildFields: i.ChildFields, Title: n.Title, Notes: n.Notes, DueAt: n.DueAt,
					AssigneeID: w.actor.UserID, InteractionID: i.ID}
				// The server makes the task, not the device that pushed the
				// interaction: it is new to that device's next pull.
				server := w.actor
				server.DeviceID = ""
				if _, err := s.Tasks.createWithID(ctx, server, n.TaskID, task); err != nil {
					return fmt.Errorf("create the next step's task: %w", err)
				}
			}
			return s.touchCustomer(ctx, w.actor, i.CustomerID, i.OccurredAt)
		},
		filters: withChild(map[string]filter{
			"channel": equals("channel", models.Channels...),
			"user_id": equals("created_by"),
			"from":    since("occurred_at", false),
			"to":      until("occurred_at", false),
			"q":       contains("content"),
		}),
		sorts: map[string]string{"occurred_at": "occurred_at"},
		timeline: func(i *models.Interaction) (time.Time, string) {
			return i.OccurredAt, i.Channel + ": " + clip(i.Content, 80)
		},
	}
}

// touchCustomer records an interaction time on its customer, for pool reclaim
// and "no contact for N days" reports.
func (s *Service) touchCustomer(ctx context.Context, a models.Actor, customerID string, at time.Time) error {
	_, err := s.Customers.mutate(ctx, a, customerID, "interaction", func(w *write[models.Customer]) error {
		// A minute's precision is all pool reclaim and reports need; it spares
		// the customer a new version for every call of a busy day.
		if w.rec.LastInteractionAt == nil || at.After(w.rec.LastInteractionAt.Add(time.Minute)) {
			w.rec.LastInteractionAt = &at
		}
		return nil
	})
	return err
}

func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}

func (s *Service) taskHooks() hooks[models.Task] {
	return hooks[models.Task]{
		prepare: func(ctx context.Context, w *write[models.Task]) error {
			t := w.rec
			if err := t.Prepare(w.now); err != nil {
				return err
			}
			c, err := s.parentOf(ctx, w.actor, &t.Meta, &t.ChildFields, oldChild(w, func(r *models.Task) *models.ChildFields { return &r.ChildFields }))
			if err != nil {
				return err
			}
			// interaction_id is written by the server (a next step's task), but
			// a synced device could send one: it must name an interaction of
			// the task's customer.
			var was string
			if w.old != nil {
				was = w.old.InteractionID
			}
			if err := reference(ctx, s.Interactions, w.actor, "interaction_id", t.InteractionID, was, t.CustomerID, w.old != nil); err != nil {
				return err
			}
			if t.AssigneeID == "" {
				t.AssigneeID = c.OwnerID
			}
			if t.AssigneeID == "" {
				t.AssigneeID = w.actor.UserID
			}
			if w.old == nil || w.old.AssigneeID != t.AssigneeID {
				return s.checkAssignee(ctx, w.actor, t.AssigneeID)
			}
			return nil
		},
		after: func(ctx context.Context, w *write[models.Task]) error {
			if s.observer != nil {
				if err := s.observer.TaskChanged(ctx, *w.rec); err != nil {
					s.log.ErrorContext(ctx, "reminders of a changed task", "task", w.rec.ID, "err", err)
				}
			}
			return nil
		},
		visible:       func(a models.Actor, t *models.Task) bool { return assignedOrOwned(a, &t.Meta, t.AssigneeID) },
		scopeAssignee: true,
		filters: withChild(map[string]filter{
			"assignee_id": equals("assignee_id"),
			"status":      equals("status", models.TaskOpen, models.TaskDone, models.TaskCancelled),
			"due_from":    since("due_at", false),
			"due_to":      until("due_at", false),
		}),
		sorts: map[string]string{"due_at": "due_at"},
		timeline: func(t *models.Task) (time.Time, string) {
			return t.DueAt, "follow-up " + t.Title + " (" + t.Status + ")"
		},
	}
}

// createWithID creates a record under an id chosen in advance (a task named by
// an interaction's next step).
func (r *Records[R]) createWithID(ctx context.Context, a models.Actor, id string, in R) (R, error) {
	return r.createAs(ctx, a, in, false, id)
}

func (s *Service) orderHooks() hooks[models.Order] {
	return hooks[models.Order]{
		prepare: func(ctx context.Context, w *write[models.Order]) error {
			if err := w.rec.Prepare(w.settings, w.now); err != nil {
				return err
			}
			_, err := s.parentOf(ctx, w.actor, &w.rec.Meta, &w.rec.ChildFields, oldChild(w, func(r *models.Order) *models.ChildFields { return &r.ChildFields }))
			return err
		},
		after: func(ctx context.Context, w *write[models.Order]) error {
			return s.refreshDerived(ctx, w.actor.TenantID, w.rec.CustomerID)
		},
		filters: withChild(map[string]filter{
			"status": equals("status", models.OrderStatuses...),
			"from":   since("ordered_on", true),
			"to":     until("ordered_on", true),
		}),
		sorts: map[string]string{"ordered_on": "ordered_on", "amount": "amount"},
		timeline: func(o *models.Order) (time.Time, string) {
			return dateTime(o.OrderedOn), fmt.Sprintf("order %d %s (%s)", o.Amount, o.Currency, o.Status)
		},
	}
}

func dateTime(d string) time.Time {
	t, _ := time.Parse(time.DateOnly, d)
	return t
}

func (s *Service) paymentHooks() hooks[models.Payment] {
	return hooks[models.Payment]{
		prepare: func(ctx context.Context, w *write[models.Payment]) error {
			p := w.rec
			if err := p.Prepare(w.now); err != nil {
				return err
			}
			if w.old != nil && w.old.OrderID != p.OrderID {
				return &models.ValidationError{Fields: []models.FieldError{{Field: "order_id", Message: "cannot be changed; delete the payment and record a new one"}}}
			}
			order, err := s.Orders.load(ctx, w.actor.TenantID, p.OrderID)
			if errors.Is(err, models.ErrNotFound) || (err == nil && (order.Deleted() || !w.actor.CanSeeOwned(order.TenantID, order.OwnerID, order.TeamID))) {
				return &models.ValidationError{Fields: []models.FieldError{{Field: "order_id", Message: fmt.Sprintf("no order with id %q", p.OrderID)}}}
			}
			if err != nil {
				return err
			}
			if !order.Owes() {
				return &models.ValidationError{Fields: []models.FieldError{{Field: "order_id", Message: "the order is " + order.Status + " and owes nothing"}}}
			}
			p.CustomerID, p.Currency = order.CustomerID, order.Currency
			if _, err := s.parentOf(ctx, w.actor, &p.Meta, &p.ChildFields, nil); err != nil {
				return err
			}
			paid, err := s.paidOn(ctx, w.actor.TenantID, order.ID, p.ID)
			if err != nil {
				return err
			}
			if left := order.Amount - paid; p.Amount > left {
				return &models.ValidationError{Fields: []models.FieldError{{Field: "amount", Message: fmt.Sprintf("exceeds what the order still owes (%d)", left)}}}
			}
			return nil
		},
		after: func(ctx context.Context, w *write[models.Payment]) error {
			return s.refreshDerived(ctx, w.actor.TenantID, w.rec.CustomerID)
		},
		filters: withChild(map[string]filter{
			"order_id": equals("order_id"),
			"method":   equals("method", models.PaymentMethods...),
			"from":     since("paid_at", false),
			"to":       until("paid_at", false),
		}),
		sorts: map[string]string{"paid_at": "paid_at"},
		timeline: func(p *models.Payment) (time.Time, string) {
			return p.PaidAt, fmt.Sprintf("payment %d %s by %s", p.Amount, p.Currency, p.Method)
		},
	}
}

// paidOn sums the live payments of an order, except the payment except.
func (s *Service) paidOn(ctx context.Context, tenant, orderID, except string) (int64, error) {
	var payments []models.Payment
	q := store.Query{Tenant: tenant, Scope: models.Scope{All: true}, Conds: []store.Cond{{Field: "order_id", Op: store.Eq, Value: orderID}}}
	if err := s.store.Find(ctx, store.Payments, q, &payments); err != nil {
		return 0, err
	}
	var sum int64
	for _, p := range payments {
		if p.ID != except {
			sum += p.Amount
		}
	}
	return sum, nil
}

// refreshDerived recomputes a customer's balance and credit rating from its
// orders and payments.
func (s *Service) refreshDerived(ctx context.Context, tenant, customerID string) error {
	st, err := s.settings(ctx, tenant)
	if err != nil {
		return err
	}
	orders, err := childrenOf(ctx, s.Orders, tenant, customerID, maxChildren)
	if err != nil {
		return err
	}
	payments, err := childrenOf(ctx, s.Payments, tenant, customerID, maxChildren)
	if err != nil {
		return err
	}
	system := models.Actor{TenantID: tenant, UserID: "system", Role: models.RoleAdmin}
	_, err = s.Customers.mutate(ctx, system, customerID, "credit", func(w *write[models.Customer]) error {
		credit, balance := models.RateCredit(orders.recs, payments.recs, w.rec.CreditLimit, st.Currency, w.now)
		if w.rec.Credit != nil && sameCredit(*w.rec.Credit, credit) && slices.Equal(w.rec.Balance, balance) {
			return nil // nothing but the time changed: no new version
		}
		w.rec.Credit, w.rec.Balance = &credit, balance
		return nil
	})
	return err
}

// sameCredit compares two ratings but for when they were computed.
func sameCredit(a, b models.Credit) bool {
	a.ComputedAt, b.ComputedAt = time.Time{}, time.Time{}
	return reflect.DeepEqual(a, b)
}

func (s *Service) surveyHooks() hooks[models.Survey] {
	return hooks[models.Survey]{
		prepare: func(ctx context.Context, w *write[models.Survey]) error {
			if err := w.rec.Prepare(w.now); err != nil {
				return err
			}
			if _, err := s.parentOf(ctx, w.actor, &w.rec.Meta, &w.rec.ChildFields, oldChild(w, func(r *models.Survey) *models.ChildFields { return &r.ChildFields })); err != nil {
				return err
			}
			var was string
			if w.old != nil {
				was = w.old.TicketID
			}
			return reference(ctx, s.Tickets, w.actor, "ticket_id", w.rec.TicketID, was, w.rec.CustomerID, w.old != nil)
		},
		filters: withChild(map[string]filter{"from": since("taken_at", false), "to": until("taken_at", false)}),
		sorts:   map[string]string{"taken_at": "taken_at"},
		timeline: func(v *models.Survey) (time.Time, string) {
			return v.TakenAt, fmt.Sprintf("survey csat %s nps %s", intOrDash(v.CSAT), intOrDash(v.NPS))
		},
	}
}

func intOrDash(p *int) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprint(*p)
}
