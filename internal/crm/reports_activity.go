package crm

import (
	"context"
	"fmt"
	"time"

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
	period := f.inPeriod("occurred_at")
	logged, err := s.tally(ctx, s.Interactions.coll, models.Tally{Query: reportQuery(a, f, period...),
		By: []string{"created_by", "occurred_at", "channel"}, Days: []string{"occurred_at"}})
	if err != nil {
		return nil, err
	}
	for _, g := range logged {
		r := rep(text(g.Values[0]))
		day, _ := g.Values[1].(time.Time)
		y, w := day.ISOWeek()
		week := fmt.Sprintf("%d-W%02d", y, w)
		if r.PerWeek[week] == nil {
			r.PerWeek[week] = map[string]int{}
		}
		channel := text(g.Values[2])
		r.PerWeek[week][channel] += int(g.Count)
		if channel == "visit" {
			r.Visits += int(g.Count)
		}
	}
	// A check-in's latitude is always stored with it: visits that have one
	// were checked in.
	checkedIn, err := s.tally(ctx, s.Interactions.coll, models.Tally{Query: reportQuery(a, f, append(period,
		models.Cond{Field: "channel", Op: models.OpEq, Value: "visit"},
		models.Cond{Field: "check_in.lat", Op: models.OpNe, Value: nil})...), By: []string{"created_by"}})
	if err != nil {
		return nil, err
	}
	for _, g := range checkedIn {
		rep(text(g.Values[0])).CheckedIn += int(g.Count)
	}
	now := s.now()
	due := reportQuery(a, f, f.inPeriod("due_at")...)
	due.SortField = "due_at"
	err = eachReported(ctx, s.Tasks, due, func(t *models.Task) {
		if t.Status == models.TaskCancelled {
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
