package crm

import (
	"context"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fieldcrm/fieldcrm/models"
)

// Ticket assignment rule (documented in docs/api.md): a ticket created without an
// assignee goes round-robin to the active members of the tenant's support team
// when settings name one, otherwise to its customer's owner, otherwise (a pool
// customer) to whoever opened it. The round-robin turn is a shared Redis counter,
// so replicas take turns together.
func (s *Service) autoAssignee(ctx context.Context, w *write[models.Ticket], customer models.Customer) (string, error) {
	if team := w.settings.SupportTeamID; team != "" {
		members, err := s.teamMembers(ctx, w.actor.TenantID, team)
		if err == nil {
			turn, err := s.counters.Next(ctx, "ticket-turn:"+w.actor.TenantID)
			if err != nil {
				return "", err
			}
			return members[(turn-1)%int64(len(members))].ID, nil
		}
		s.log.WarnContext(ctx, "support team has no active members; assigning tickets to owners", "team", team)
	}
	if customer.OwnerID != "" {
		return customer.OwnerID, nil
	}
	return w.actor.UserID, nil
}

func (s *Service) ticketHooks() hooks[models.Ticket] {
	return hooks[models.Ticket]{
		prepare: func(ctx context.Context, w *write[models.Ticket]) error {
			t := w.rec
			if err := t.Prepare(); err != nil {
				return err
			}
			customer, err := s.parentOf(ctx, w.actor, &t.Meta, &t.ChildFields, oldChild(w, func(r *models.Ticket) *models.ChildFields { return &r.ChildFields }))
			if err != nil {
				return err
			}
			from := models.TicketNew
			if w.old == nil {
				t.Comments, t.StatusHistory = []models.TicketComment{}, []models.Transition{}
				if t.AssigneeID == "" {
					if t.AssigneeID, err = s.autoAssignee(ctx, w, customer); err != nil {
						return err
					}
				} else if err := s.checkAssignee(ctx, w.actor, t.AssigneeID); err != nil {
					return err
				}
				if t.Status != models.TicketNew && t.Status != models.TicketAssigned {
					return &models.ValidationError{Fields: []models.FieldError{{Field: "status",
						Message: "a ticket is created new and assigned by the server; move it on to " + t.Status + " afterwards, one step at a time"}}}
				}
				t.Status = models.TicketAssigned
			} else {
				from = w.old.Status
				if t.AssigneeID != w.old.AssigneeID {
					if err := s.checkAssignee(ctx, w.actor, t.AssigneeID); err != nil {
						return err
					}
				}
			}
			if err := models.CheckTicketMove(from, t.Status); err != nil {
				return err
			}
			t.StampStatus(from, w.actor.UserID, w.now)
			t.SLADueAt = w.settings.SLADue(t.Priority, t.CreatedAt)
			return nil
		},
		after: func(ctx context.Context, w *write[models.Ticket]) error {
			if s.observer != nil {
				if err := s.observer.TicketChanged(ctx, *w.rec); err != nil {
					s.log.ErrorContext(ctx, "SLA reminders of a changed ticket", "ticket", w.rec.ID, "err", err)
				}
			}
			return nil
		},
		visible:       func(a models.Actor, t *models.Ticket) bool { return assignedOrOwned(a, &t.Meta, t.AssigneeID) },
		scopeAssignee: true,
		filters: withChild(map[string]filter{
			"status":      described(equals("status", models.TicketStatuses...), "ticket status"),
			"priority":    described(equals("priority", models.TicketPriorities...), "priority"),
			"type":        described(equals("type", models.TicketTypes...), "ticket type"),
			"assignee_id": described(equals("assignee_id"), "the assignee's user id"),
			"sla_before":  described(until("sla_due_at", false), "SLA due before"),
		}),
		sorts: map[string]string{"sla_due_at": "sla_due_at"},
		timeline: func(t *models.Ticket) (time.Time, string) {
			return t.CreatedAt, t.Type + " ticket " + t.Title + " (" + t.Status + ")"
		},
	}
}

// MaxCommentLength bounds one ticket comment.
const MaxCommentLength = 5000

// Comment adds a comment to a ticket the actor can see.
func (s *Service) Comment(ctx context.Context, a models.Actor, ticketID, body string) (models.Ticket, error) {
	body = strings.TrimSpace(body)
	if body == "" || utf8.RuneCountInString(body) > MaxCommentLength {
		return models.Ticket{}, &models.ValidationError{Fields: []models.FieldError{{Field: "body", Message: "must be 1 to 5000 characters"}}}
	}
	return s.Tickets.mutate(ctx, a, ticketID, "comment", func(w *write[models.Ticket]) error {
		if err := s.Tickets.checkEdit(a, w.old, 0); err != nil {
			return err
		}
		w.rec.Comments = append(w.rec.Comments, models.TicketComment{ID: models.NewID(), AuthorID: a.UserID, Body: body, At: w.now})
		return nil
	})
}
