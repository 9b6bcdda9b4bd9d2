package crm

import (
	"context"

	"github.com/fieldcrm/fieldcrm/models"
)

// FunnelStep is one lifecycle stage of the funnel.
type FunnelStep struct {
	Stage string `json:"stage"`
	// Entered counts customers who moved into the stage in [from, to);
	// Advanced those of them who later moved further along the funnel.
	Entered    int     `json:"entered"`
	Advanced   int     `json:"advanced"`
	Conversion float64 `json:"conversion"`
	// AvgDaysInStage is the mean stay in the stage, over stays that ended in
	// [from, to).
	AvgDaysInStage float64 `json:"avg_days_in_stage"`
}

// FunnelDefinition states the funnel report.
const FunnelDefinition = "The lifecycle lead → prospect → opportunity → customer → loyal, from each customer's stage history. entered: customers who moved into the stage in [from, to) (creation counts); " +
	"advanced: those of them who moved to a later stage of the funnel afterwards (up to now); conversion = advanced / entered; avg_days_in_stage: mean length of stays in the stage that ended in [from, to). Rounded to 2 decimals."

// funnelStages are the forward stages, in order.
var funnelStages = []string{"lead", "prospect", "opportunity", "customer", "loyal"}

// FunnelReport reports conversion between stages and time spent in each.
func (s *Service) FunnelReport(ctx context.Context, a models.Actor, f ReportFilter) ([]FunnelStep, error) {
	f, err := s.window(f)
	if err != nil {
		return nil, err
	}
	pos := map[string]int{}
	for i, st := range funnelStages {
		pos[st] = i + 1
	}
	entered, advanced := map[string]int{}, map[string]int{}
	stayDays, stays := map[string]float64{}, map[string]int{}
	// A stage change is written with the customer, so a customer whose
	// history has a change in the period (an entry, or the end of a stay)
	// was last changed at or after its start.
	changed := reportQuery(a, f, models.Cond{Field: "updated_at", Op: models.OpGte, Value: f.From})
	changed.SortField = "updated_at"
	err = eachReported(ctx, s.Customers, changed, func(c *models.Customer) {
		h := c.StageHistory
		for i, t := range h {
			if i+1 < len(h) && f.within(h[i+1].At) {
				stayDays[t.To] += h[i+1].At.Sub(t.At).Hours() / 24
				stays[t.To]++
			}
			if pos[t.To] == 0 || !f.within(t.At) {
				continue
			}
			entered[t.To]++
			for _, later := range h[i+1:] {
				if pos[later.To] > pos[t.To] {
					advanced[t.To]++
					break
				}
			}
		}
	})
	out := make([]FunnelStep, len(funnelStages))
	for i, st := range funnelStages {
		out[i] = FunnelStep{Stage: st, Entered: entered[st], Advanced: advanced[st]}
		if entered[st] > 0 {
			out[i].Conversion = round2(float64(advanced[st]) / float64(entered[st]))
		}
		if stays[st] > 0 {
			out[i].AvgDaysInStage = round2(stayDays[st] / float64(stays[st]))
		}
	}
	return out, err
}
