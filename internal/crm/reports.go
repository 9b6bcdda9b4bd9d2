package crm

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/fieldcrm/fieldcrm/models"
)

// ReportFilter narrows a report: customers created in [From, To) for the
// "new" series, and one team's or one owner's customers for everything.
type ReportFilter struct {
	From, To time.Time
	TeamID   string
	OwnerID  string
}

// defaultReportSpan is how far back a report looks when from is not given.
const defaultReportSpan = 90 * 24 * time.Hour

// window fills in a missing period (to: now, from: 90 days before to) and
// checks that from comes before to.
func (s *Service) window(f ReportFilter) (ReportFilter, error) {
	if f.To.IsZero() {
		f.To = s.now().UTC()
	}
	if f.From.IsZero() {
		f.From = f.To.Add(-defaultReportSpan)
	}
	if !f.From.Before(f.To) {
		return f, &models.ValidationError{Fields: []models.FieldError{{Field: "from", Message: "must be before to"}}}
	}
	return f, nil
}

// PeriodCount is a count for one week (2026-W48) or month (2026-11).
type PeriodCount struct {
	Period string `json:"period"`
	Count  int    `json:"count"`
}

// CustomerReport is the customer base as the caller may see it.
type CustomerReport struct {
	Definition     string         `json:"definition"`
	Total          int            `json:"total"`
	ByStage        map[string]int `json:"by_stage"`
	ByCustomerType map[string]int `json:"by_customer_type"`
	BySource       map[string]int `json:"by_source"`
	ByRegion       map[string]int `json:"by_region"`
	ByIndustry     map[string]int `json:"by_industry"`
	ByValueTier    map[string]int `json:"by_value_tier"`
	NewPerWeek     []PeriodCount  `json:"new_per_week"`
	NewPerMonth    []PeriodCount  `json:"new_per_month"`
}

// CustomerReportDefinition is stated in the report and its API description.
const CustomerReportDefinition = "Live customers the caller may see (admins: the tenant; managers: their teams and their own; reps: their own), narrowed by team_id and owner_id. " +
	"by_*: counts of those customers by field, \"(none)\" for an empty value. new_per_week (ISO weeks) and new_per_month: customers created in [from, to), in UTC; from defaults to 90 days before to, to to now."

// none labels an empty value in a breakdown.
const none = "(none)"

// reportPage is how many records a report reads at a time.
const reportPage = 500

// eachVisible calls fn with every live record of r that the actor's list
// scope covers (admins: the tenant; managers: their teams and their own; reps:
// their own; not the public pool) and that f narrows to. It reads the
// tenant's records in sync-number order, a page at a time: the one read
// every engine answers from an index, (tenant_id, seq), so a report costs one
// pass over the tenant's records whatever its size.
func eachVisible[R any](ctx context.Context, r *Records[R], a models.Actor, f ReportFilter, fn func(*R)) error {
	scope := a.ListScope(false)
	var after int64
	for {
		var page []R
		if err := r.svc.store.Changes(ctx, r.coll, a.TenantID, after, math.MaxInt64, reportPage, &page); err != nil {
			return fmt.Errorf("report over %s: %w", r.coll, err)
		}
		for i := range page {
			m := meta(&page[i])
			if !m.Deleted() && inScope(scope, m) && f.covers(m) {
				fn(&page[i])
			}
		}
		if len(page) < reportPage {
			return nil
		}
		after = meta(&page[len(page)-1]).Seq
	}
}

// inScope reports whether a record's owner or team is in the scope.
func inScope(sc models.Scope, m *models.Meta) bool {
	return sc.All || slices.Contains(sc.OwnerIDs, m.OwnerID) || (m.TeamID != "" && slices.Contains(sc.TeamIDs, m.TeamID))
}

// covers applies the team and owner filters.
func (f ReportFilter) covers(m *models.Meta) bool {
	return (f.TeamID == "" || m.TeamID == f.TeamID) && (f.OwnerID == "" || m.OwnerID == f.OwnerID)
}

// CustomerReport counts the customers the actor may see.
func (s *Service) CustomerReport(ctx context.Context, a models.Actor, f ReportFilter) (CustomerReport, error) {
	f, err := s.window(f)
	if err != nil {
		return CustomerReport{}, err
	}
	out := CustomerReport{Definition: CustomerReportDefinition, ByStage: map[string]int{}, ByCustomerType: map[string]int{},
		BySource: map[string]int{}, ByRegion: map[string]int{}, ByIndustry: map[string]int{}, ByValueTier: map[string]int{}}
	weeks, months := map[string]int{}, map[string]int{}
	add := func(m map[string]int, v string) {
		if v == "" {
			v = none
		}
		m[v]++
	}
	err = eachVisible(ctx, s.Customers, a, f, func(c *models.Customer) {
		out.Total++
		add(out.ByStage, c.Stage)
		add(out.ByCustomerType, c.CustomerType)
		add(out.BySource, c.Source)
		add(out.ByRegion, c.Region)
		add(out.ByIndustry, c.Industry)
		add(out.ByValueTier, c.ValueTier)
		if created := c.CreatedAt.UTC(); !created.Before(f.From) && created.Before(f.To) {
			y, w := created.ISOWeek()
			weeks[fmt.Sprintf("%d-W%02d", y, w)]++
			months[created.Format("2006-01")]++
		}
	})
	out.NewPerWeek, out.NewPerMonth = series(weeks), series(months)
	return out, err
}

func series(m map[string]int) []PeriodCount {
	out := make([]PeriodCount, 0, len(m))
	for p, n := range m {
		out = append(out, PeriodCount{Period: p, Count: n})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Period < out[j].Period })
	return out
}

// RFMReport is the RFM segmentation of the customers the caller may see.
type RFMReport struct {
	Definition string            `json:"definition"`
	AsOf       time.Time         `json:"as_of"`
	Segments   map[string]int    `json:"segments"`
	Customers  []models.RFMScore `json:"customers"`
}

// RFMDefinition is stated in the report and its API description.
const RFMDefinition = "Orders that are not draft or cancelled, in the tenant's currency, ordered in the last 365 days. " +
	"R: days since the last order; F: number of orders; M: their total amount. Each is scored 1-5 among the tenant's customers with orders: ceil(5 x the share of customers it is at least as good as). " +
	"FM = round((F+M)/2). Segments: champions R>=4 and FM>=4; loyal R>=3 and FM>=3; new R>=4 with one order; potential R>=3; at_risk FM>=3; hibernating R=2; lost R=1. " +
	"The segment is each customer's value_tier (refreshed daily, after imports and by POST /v1/reports/rfm/refresh); customers without such orders have no RFM tier."

// scoreTenant computes the RFM scores of all the tenant's customers with
// orders: scores are relative to the whole tenant whoever asks.
func (s *Service) scoreTenant(ctx context.Context, tenant string) ([]models.RFMScore, error) {
	st, err := s.settings(ctx, tenant)
	if err != nil {
		return nil, err
	}
	now := s.now().UTC()
	since := now.AddDate(0, 0, -models.RFMWindowDays).Format(time.DateOnly)
	system := models.SystemActor(tenant)
	facts := map[string]*models.OrderFacts{}
	err = eachVisible(ctx, s.Orders, system, ReportFilter{}, func(o *models.Order) {
		day, ok := dayOf(o.OrderedOn)
		if !ok || o.OrderedOn < since || !countingOrder(o, st.Currency) {
			return
		}
		f := facts[o.CustomerID]
		if f == nil {
			f = &models.OrderFacts{CustomerID: o.CustomerID}
			facts[o.CustomerID] = f
		}
		f.Orders++
		f.Amount += o.Amount
		if day.After(f.LastOrder) {
			f.LastOrder = day
		}
	})
	if err != nil {
		return nil, err
	}
	list := make([]models.OrderFacts, 0, len(facts))
	for _, f := range facts {
		list = append(list, *f)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].CustomerID < list[j].CustomerID })
	return models.ScoreRFM(list, now.Truncate(24*time.Hour)), nil
}

// RFMReport scores the tenant and reports the customers the actor may see.
func (s *Service) RFMReport(ctx context.Context, a models.Actor, f ReportFilter) (RFMReport, error) {
	f, err := s.window(f)
	if err != nil {
		return RFMReport{}, err
	}
	scores, err := s.scoreTenant(ctx, a.TenantID)
	if err != nil {
		return RFMReport{}, err
	}
	visible := map[string]bool{}
	if err := eachVisible(ctx, s.Customers, a, f, func(c *models.Customer) { visible[c.ID] = true }); err != nil {
		return RFMReport{}, err
	}
	out := RFMReport{Definition: RFMDefinition, AsOf: s.now().UTC(), Customers: []models.RFMScore{}}
	for _, sc := range scores {
		if visible[sc.CustomerID] {
			out.Customers = append(out.Customers, sc)
		}
	}
	out.Segments = models.CountsRFM(out.Customers)
	return out, nil
}

// RefreshRFM writes every customer's RFM segment to its value tier (only
// where it changed, so devices receive only real changes) and clears the
// RFM tier of customers without qualifying orders. It returns the number
// of customers changed.
func (s *Service) RefreshRFM(ctx context.Context, tenant string) (int, error) {
	scores, err := s.scoreTenant(ctx, tenant)
	if err != nil {
		return 0, err
	}
	system := models.SystemActor(tenant)
	want := map[string]string{}
	for _, sc := range scores {
		want[sc.CustomerID] = sc.Segment
	}
	// Customers holding an RFM tier that no longer applies lose it.
	err = eachVisible(ctx, s.Customers, system, ReportFilter{}, func(c *models.Customer) {
		if _, scored := want[c.ID]; !scored && slices.Contains(models.RFMSegments, c.ValueTier) {
			want[c.ID] = ""
		}
	})
	if err != nil {
		return 0, err
	}
	changed := 0
	for _, id := range slices.Sorted(maps.Keys(want)) {
		tier := want[id]
		before, err := s.Customers.live(ctx, tenant, id)
		if err != nil || before.ValueTier == tier {
			continue // deleted since, or nothing to change
		}
		if _, err := s.Customers.mutate(ctx, system, id, "rfm", func(w *write[models.Customer]) error {
			w.rec.ValueTier = tier
			return nil
		}); err != nil {
			return changed, fmt.Errorf("rfm tier of customer %s: %w", id, err)
		}
		changed++
	}
	return changed, nil
}

// RefreshRFMAll refreshes every tenant (the daily job).
func (s *Service) RefreshRFMAll(ctx context.Context) (int, error) {
	tenants, err := s.store.TenantIDs(ctx)
	if err != nil {
		return 0, err
	}
	total := 0
	for _, t := range tenants {
		n, err := s.RefreshRFM(ctx, t)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}
