package crm

import (
	"context"
	"fmt"
	"time"

	"github.com/fieldcrm/fieldcrm/models"
)

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
		filters: withChild(map[string]filter{"from": described(since("taken_at", false), "taken at or after"), "to": described(until("taken_at", false), "taken before")}),
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
