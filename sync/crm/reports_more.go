package crm

import (
	"context"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/fieldcrm/fieldcrm/models"
)

// The reports below read the records the caller may see, a page at a time,
// and count in Go: the same code on MongoDB and the embedded engines, with
// definitions stated once (each report's Definition, also in the OpenAPI
// description). Money is in the tenant's currency; orders in other
// currencies, drafts and cancelled orders do not count.

// within reports whether t is in [f.From, f.To).
func (f ReportFilter) within(t time.Time) bool { return !t.Before(f.From) && t.Before(f.To) }

func dayOf(date string) (time.Time, bool) {
	t, err := time.Parse(time.DateOnly, date)
	return t, err == nil
}

// countingOrder reports whether an order counts as revenue.
func countingOrder(o *models.Order, currency string) bool {
	return o.Currency == currency && o.Status != "draft" && o.Status != "cancelled"
}

// CustomerAmount is a customer with an amount (revenue or what it owes).
type CustomerAmount struct {
	CustomerID string `json:"customer_id"`
	Number     string `json:"number"`
	Name       string `json:"name"`
	Amount     int64  `json:"amount"`
	Rating     string `json:"credit_rating,omitempty"`
}

// AtRiskCustomer is a customer who went quiet or orders less often.
type AtRiskCustomer struct {
	CustomerID string   `json:"customer_id"`
	Number     string   `json:"number"`
	Name       string   `json:"name"`
	Reasons    []string `json:"reasons"`
}

// SalesReport is revenue and risk.
type SalesReport struct {
	Definition   string           `json:"definition"`
	Currency     string           `json:"currency"`
	Revenue      int64            `json:"revenue"`
	TopCustomers []CustomerAmount `json:"top_customers"`
	Outstanding  []CustomerAmount `json:"outstanding"`
	ByRating     map[string]int   `json:"by_credit_rating"`
	AtRisk       []AtRiskCustomer `json:"at_risk"`
}

// SalesDefinition states the sales report.
const SalesDefinition = "revenue: orders ordered in [from, to), not draft or cancelled, in the tenant's currency; top_customers: the 20 with the most such revenue. " +
	"outstanding: customers owing anything now (credit.outstanding), largest first, with their credit rating; by_credit_rating counts all customers by rating. " +
	"at_risk: active customers (stage customer or loyal) with no interaction for idle_days (default 30) days, or with fewer orders in the last 90 days than half of the 90 days before."

// SalesReport reports revenue, balances and customers at risk.
func (s *Service) SalesReport(ctx context.Context, a models.Actor, f ReportFilter, idleDays int) (SalesReport, error) {
	f, err := s.window(f)
	if err != nil {
		return SalesReport{}, err
	}
	st, err := s.settings(ctx, a.TenantID)
	if err != nil {
		return SalesReport{}, err
	}
	now := s.now().UTC()
	out := SalesReport{Definition: SalesDefinition, Currency: st.Currency, ByRating: map[string]int{},
		TopCustomers: []CustomerAmount{}, Outstanding: []CustomerAmount{}, AtRisk: []AtRiskCustomer{}}
	revenue := map[string]int64{}
	recent, before := map[string]int{}, map[string]int{}
	err = eachVisible(ctx, s.Orders, a, f, func(o *models.Order) {
		day, ok := dayOf(o.OrderedOn)
		if !ok || !countingOrder(o, st.Currency) {
			return
		}
		if f.within(day) {
			revenue[o.CustomerID] += o.Amount
			out.Revenue += o.Amount
		}
		switch age := now.Sub(day); {
		case age < 90*24*time.Hour:
			recent[o.CustomerID]++
		case age < 180*24*time.Hour:
			before[o.CustomerID]++
		}
	})
	if err != nil {
		return out, err
	}
	idleSince := now.AddDate(0, 0, -idleDays)
	err = eachVisible(ctx, s.Customers, a, f, func(c *models.Customer) {
		entry := CustomerAmount{CustomerID: c.ID, Number: c.Number, Name: c.Name}
		if r := revenue[c.ID]; r > 0 {
			entry.Amount = r
			out.TopCustomers = append(out.TopCustomers, entry)
		}
		rating := "unrated"
		if c.Credit != nil && c.Credit.Rating != "" {
			rating = c.Credit.Rating
		}
		out.ByRating[rating]++
		if c.Credit != nil && c.Credit.Outstanding > 0 {
			owed := entry
			owed.Amount, owed.Rating = c.Credit.Outstanding, rating
			out.Outstanding = append(out.Outstanding, owed)
		}
		if c.Stage != "customer" && c.Stage != "loyal" {
			return
		}
		var reasons []string
		if c.LastInteractionAt == nil || c.LastInteractionAt.Before(idleSince) {
			reasons = append(reasons, fmt.Sprintf("no interaction for %d days", idleDays))
		}
		if b := before[c.ID]; b > 0 && recent[c.ID]*2 < b {
			reasons = append(reasons, fmt.Sprintf("%d orders in the last 90 days, %d in the 90 before", recent[c.ID], b))
		}
		if len(reasons) > 0 {
			out.AtRisk = append(out.AtRisk, AtRiskCustomer{CustomerID: c.ID, Number: c.Number, Name: c.Name, Reasons: reasons})
		}
	})
	byAmount := func(l []CustomerAmount) {
		sort.SliceStable(l, func(i, j int) bool { return l[i].Amount > l[j].Amount })
	}
	byAmount(out.TopCustomers)
	byAmount(out.Outstanding)
	out.TopCustomers = out.TopCustomers[:min(20, len(out.TopCustomers))]
	return out, err
}

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
	err = eachVisible(ctx, s.Tickets, a, f, func(t *models.Ticket) {
		if !f.within(t.CreatedAt) {
			return
		}
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
	err = eachVisible(ctx, s.Surveys, a, f, func(sv *models.Survey) {
		if !f.within(sv.TakenAt) {
			return
		}
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

// LoyaltyReport is points and members.
type LoyaltyReport struct {
	Definition string         `json:"definition"`
	Earned     int64          `json:"earned"`
	Redeemed   int64          `json:"redeemed"`
	Expired    int64          `json:"expired"`
	Adjusted   int64          `json:"adjusted"`
	ByTier     map[string]int `json:"members_by_tier"`
}

// LoyaltyDefinition states the loyalty report.
const LoyaltyDefinition = "Points of ledger entries made in [from, to), by kind (adjusted is the signed sum of adjustments); members_by_tier: customers by their current loyalty tier."

// LoyaltyReport reports points and members per tier.
func (s *Service) LoyaltyReport(ctx context.Context, a models.Actor, f ReportFilter) (LoyaltyReport, error) {
	f, err := s.window(f)
	if err != nil {
		return LoyaltyReport{}, err
	}
	out := LoyaltyReport{Definition: LoyaltyDefinition, ByTier: map[string]int{}}
	err = eachVisible(ctx, s.LoyaltyEntries, a, f, func(e *models.LoyaltyEntry) {
		if !f.within(e.CreatedAt) {
			return
		}
		switch e.Kind {
		case models.PointsEarn:
			out.Earned += e.Points
		case models.PointsRedeem:
			out.Redeemed += e.Points
		case models.PointsExpire:
			out.Expired += e.Points
		default:
			out.Adjusted += e.Points
		}
	})
	if err != nil {
		return out, err
	}
	err = eachVisible(ctx, s.Customers, a, f, func(c *models.Customer) {
		tier := c.Loyalty.Tier
		if tier == "" {
			tier = none
		}
		out.ByTier[tier]++
	})
	return out, err
}

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
	err = eachVisible(ctx, s.Customers, a, f, func(c *models.Customer) {
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
