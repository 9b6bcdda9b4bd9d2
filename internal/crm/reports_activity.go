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
	// The follow-ups due in the period, grouped by what decides their
	// column: read from the entries of an index, not from the records.
	due, err := s.tally(ctx, s.Tasks.coll, models.Tally{Query: reportQuery(a, f, f.inPeriod("due_at")...),
		By: []string{"assignee_id", "status", "due_at", "completed_at"}})
	if err != nil {
		return nil, err
	}
	now := s.now()
	for _, g := range due {
		status := text(g.Values[1])
		if status == models.TaskCancelled {
			continue
		}
		dueAt, _ := g.Values[2].(time.Time)
		completedAt, completed := g.Values[3].(time.Time)
		r, n := rep(text(g.Values[0])), int(g.Count)
		switch {
		case status == models.TaskDone && completed && !completedAt.After(dueAt):
			r.DoneOnTime += n
		case status == models.TaskDone:
			r.DoneLate += n
		case dueAt.Before(now):
			r.Overdue += n
		}
	}
	return reps, nil
}
