package crm

import (
	"context"
	"time"

	"github.com/fieldcrm/fieldcrm/models"
)

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
			"assignee_id": described(equals("assignee_id"), "the assignee's user id"),
			"status":      described(equals("status", models.TaskStatuses...), "task status"),
			"due_from":    described(since("due_at", false), "due at or after"),
			"due_to":      described(until("due_at", false), "due before"),
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
