package crm

import (
	"context"
	"fmt"
	"time"

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

// FunnelReport reports conversion between stages and time spent in each,
// from storage's count of the stage histories' moves (see store.Funnel).
func (s *Service) FunnelReport(ctx context.Context, a models.Actor, f ReportFilter) ([]FunnelStep, error) {
	f, err := s.window(f)
	if err != nil {
		return nil, err
	}
	counts, err := s.store.Funnel(ctx, models.Funnel{Query: reportQuery(a, f), From: f.From, To: f.To})
	if err != nil {
		return nil, fmt.Errorf("funnel report: %w", err)
	}
	byStage := map[string]models.FunnelCount{}
	for _, c := range counts {
		byStage[c.Stage] = c
	}
	stages := models.FunnelStages()
	out := make([]FunnelStep, len(stages))
	for i, st := range stages {
		c := byStage[st]
		out[i] = FunnelStep{Stage: st, Entered: int(c.Entered), Advanced: int(c.Advanced)}
		if c.Entered > 0 {
			out[i].Conversion = round2(float64(c.Advanced) / float64(c.Entered))
		}
		if c.Stays > 0 {
			out[i].AvgDaysInStage = round2(float64(c.StayMillis) / float64(c.Stays) / float64(24*time.Hour/time.Millisecond))
		}
	}
	return out, nil
}
