package crm

import (
	"context"
	"fmt"
	"time"

	"github.com/fieldcrm/fieldcrm/models"
)

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
			"channel": described(equals("channel", models.Channels...), "channel"),
			"user_id": described(equals("created_by"), "the id of the user who recorded it"),
			"from":    described(since("occurred_at", false), "happened at or after"),
			"to":      described(until("occurred_at", false), "happened before"),
			"q":       described(contains("content"), "part of what was said or done"),
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
