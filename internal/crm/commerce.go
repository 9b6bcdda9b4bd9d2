package crm

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"time"

	"github.com/fieldcrm/fieldcrm/internal/store"
	"github.com/fieldcrm/fieldcrm/models"
)

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
			"status": described(equals("status", models.OrderStatuses...), "order status"),
			"from":   described(since("ordered_on", true), "ordered on or after"),
			"to":     described(until("ordered_on", true), "ordered before"),
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
			"order_id": described(equals("order_id"), "the order's id"),
			"method":   described(equals("method", models.PaymentMethods...), "payment method"),
			"from":     described(since("paid_at", false), "paid at or after"),
			"to":       described(until("paid_at", false), "paid before"),
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
	q := models.Query{Tenant: tenant, Scope: models.Scope{All: true}, Conds: []models.Cond{{Field: "order_id", Op: models.OpEq, Value: orderID}}}
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
