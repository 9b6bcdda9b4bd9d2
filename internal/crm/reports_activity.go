package crm

import (
	"context"
	"fmt"

	"github.com/fieldcrm/fieldcrm/models"
)

// RepActivity is one rep's work in the period.
type RepActivity struct {
	UserID string `json:"user_id"`
	// PerWeek counts interactions per ISO week and channel.
	PerWeek map[string]map[string]int `json:"per_week"`
	Visits  int                       `json:"visits"`
	// CheckedIn are visits logged with a check-in.
	CheckedIn int `json:"checked_in"`
	// Tasks due in the period: done by their due time, done late, still open past it.
	DoneOnTime int `json:"done_on_time"`
	DoneLate   int `json:"done_late"`
	Overdue    int `json:"overdue"`
}

// ActivityDefinition states the activity report.
const ActivityDefinition = "Per rep (the user who logged the interaction; the assignee of the task): interactions that occurred in [from, to) per ISO week and channel; visits and those with a check-in; " +
	"follow-up tasks due in [from, to): done_on_time (completed at or before due), done_late (completed after due), overdue (still open and past due now)."

// ActivityReport reports interactions and follow-ups per rep.
func (s *Service) ActivityReport(ctx context.Context, a models.Actor, f ReportFilter) (map[string]*RepActivity, error) {
	f, err := s.window(f)
	if err != nil {
		return nil, err
	}
	reps := map[string]*RepActivity{}
	rep := func(id string) *RepActivity {
		if reps[id] == nil {
			reps[id] = &RepActivity{UserID: id, PerWeek: map[string]map[string]int{}}
		}
		return reps[id]
	}
	err = eachVisible(ctx, s.Interactions, a, f, func(i *models.Interaction) {
		if !f.within(i.OccurredAt) {
			return
		}
		r := rep(i.CreatedBy)
		y, w := i.OccurredAt.UTC().ISOWeek()
		week := fmt.Sprintf("%d-W%02d", y, w)
		if r.PerWeek[week] == nil {
			r.PerWeek[week] = map[string]int{}
		}
		r.PerWeek[week][i.Channel]++
		if i.Channel == "visit" {
			r.Visits++
			if i.CheckIn != nil {
				r.CheckedIn++
			}
		}
	})
	if err != nil {
		return nil, err
	}
	now := s.now()
	err = eachVisible(ctx, s.Tasks, a, f, func(t *models.Task) {
		if !f.within(t.DueAt) || t.Status == models.TaskCancelled {
			return
		}
		r := rep(t.AssigneeID)
		switch {
		case t.Status == models.TaskDone && t.CompletedAt != nil && !t.CompletedAt.After(t.DueAt):
			r.DoneOnTime++
		case t.Status == models.TaskDone:
			r.DoneLate++
		case t.DueAt.Before(now):
			r.Overdue++
		}
	})
	return reps, err
}
