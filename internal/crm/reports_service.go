package crm

import (
	"context"
	"math"
	"sort"

	"github.com/fieldcrm/fieldcrm/models"
)

// ServiceReport is tickets and satisfaction.
type ServiceReport struct {
	Definition string         `json:"definition"`
	ByType     map[string]int `json:"by_type"`
	ByStatus   map[string]int `json:"by_status"`
	// SLABreaches are tickets resolved after their SLA time, or open past it.
	SLABreaches int `json:"sla_breaches"`
	// AvgResolutionHours is the mean time from opening to resolution.
	AvgResolutionHours float64 `json:"avg_resolution_hours"`
	Surveys            int     `json:"surveys"`
	AvgCSAT            float64 `json:"avg_csat"`
	NPS                float64 `json:"nps"`
	// PerMonth has the same CSAT and NPS per month; PerTopic the average
	// rating per topic.
	PerMonth []SatisfactionPeriod `json:"per_month"`
	PerTopic map[string]float64   `json:"per_topic"`
}

// SatisfactionPeriod is CSAT and NPS in one month.
type SatisfactionPeriod struct {
	Period  string  `json:"period"`
	Surveys int     `json:"surveys"`
	AvgCSAT float64 `json:"avg_csat"`
	NPS     float64 `json:"nps"`
}

// ServiceDefinition states the service report.
const ServiceDefinition = "Tickets opened in [from, to): by type and status; sla_breaches: resolved after sla_due_at, or unresolved and past it now; avg_resolution_hours over those resolved. " +
	"Surveys taken in [from, to): avg_csat (1-5) over those with CSAT; nps = % promoters (9-10) - % detractors (0-6) over those with NPS; per_topic: average of each topic's ratings. Rounded to 2 decimals."

// satisfaction accumulates CSAT and NPS.
type satisfaction struct {
	n, csatSum, csatN, promoters, detractors, npsN int
}

func (x *satisfaction) add(s *models.Survey) {
	x.n++
	if s.CSAT != nil {
		x.csatSum += *s.CSAT
		x.csatN++
	}
	if s.NPS != nil {
		x.npsN++
		switch {
		case *s.NPS >= 9:
			x.promoters++
		case *s.NPS <= 6:
			x.detractors++
		}
	}
}

func round2(v float64) float64 { return math.Round(v*100) / 100 }

func (x satisfaction) csat() float64 {
	if x.csatN == 0 {
		return 0
	}
	return round2(float64(x.csatSum) / float64(x.csatN))
}

func (x satisfaction) nps() float64 {
	if x.npsN == 0 {
		return 0
	}
	return round2(100 * float64(x.promoters-x.detractors) / float64(x.npsN))
}

// ServiceReport reports tickets, SLA and satisfaction.
func (s *Service) ServiceReport(ctx context.Context, a models.Actor, f ReportFilter) (ServiceReport, error) {
	f, err := s.window(f)
	if err != nil {
		return ServiceReport{}, err
	}
	out := ServiceReport{Definition: ServiceDefinition, ByType: map[string]int{}, ByStatus: map[string]int{}, PerMonth: []SatisfactionPeriod{}, PerTopic: map[string]float64{}}
	now := s.now()
	var resolvedHours float64
	resolved := 0
	opened := reportQuery(a, f, f.inPeriod("created_at")...)
	opened.SortField = "created_at"
	err = eachReported(ctx, s.Tickets, opened, func(t *models.Ticket) {
		out.ByType[t.Type]++
		out.ByStatus[t.Status]++
		if t.ResolvedAt != nil {
			resolved++
			resolvedHours += t.ResolvedAt.Sub(t.CreatedAt).Hours()
		}
		if (t.ResolvedAt != nil && t.ResolvedAt.After(t.SLADueAt)) || (t.ResolvedAt == nil && now.After(t.SLADueAt)) {
			out.SLABreaches++
		}
	})
	if err != nil {
		return out, err
	}
	if resolved > 0 {
		out.AvgResolutionHours = round2(resolvedHours / float64(resolved))
	}
	var all satisfaction
	months := map[string]*satisfaction{}
	topics := map[string][2]int{}
	taken := reportQuery(a, f, f.inPeriod("taken_at")...)
	taken.SortField = "taken_at"
	err = eachReported(ctx, s.Surveys, taken, func(sv *models.Survey) {
		out.Surveys++
		all.add(sv)
		m := sv.TakenAt.UTC().Format("2006-01")
		if months[m] == nil {
			months[m] = &satisfaction{}
		}
		months[m].add(sv)
		for topic, r := range map[string]*int{"product_quality": sv.Ratings.ProductQuality, "service_attitude": sv.Ratings.ServiceAttitude, "after_sales": sv.Ratings.AfterSales} {
			if r != nil {
				t := topics[topic]
				topics[topic] = [2]int{t[0] + *r, t[1] + 1}
			}
		}
	})
	out.AvgCSAT, out.NPS = all.csat(), all.nps()
	for m, x := range months {
		out.PerMonth = append(out.PerMonth, SatisfactionPeriod{Period: m, Surveys: x.n, AvgCSAT: x.csat(), NPS: x.nps()})
	}
	sort.Slice(out.PerMonth, func(i, j int) bool { return out.PerMonth[i].Period < out.PerMonth[j].Period })
	for topic, t := range topics {
		out.PerTopic[topic] = round2(float64(t[0]) / float64(t[1]))
	}
	return out, err
}
