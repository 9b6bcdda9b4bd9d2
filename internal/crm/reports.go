package crm

import (
	"context"
	"fmt"
	"maps"
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

// Reports read index entries, not records, wherever they count or add up
// (store.Tally: a GROUP BY over an index that holds every field used), and
// otherwise only the records of their period, through its index. Each
// query is one models.Query, so the engines share its meaning: live
// records, what the actor may see, the filter's team and owner.

// reportQuery selects the live records of the actor's tenant a report
// counts: what their list scope covers (admins: the tenant; managers: their
// teams and their own; reps: their own; not the public pool), narrowed by
// f's team and owner and by conds.
func reportQuery(a models.Actor, f ReportFilter, conds ...models.Cond) models.Query {
	q := models.Query{Tenant: a.TenantID, Scope: a.ListScope(false), Conds: conds}
	if f.TeamID != "" {
		q.Conds = append(q.Conds, models.Cond{Field: "team_id", Op: models.OpEq, Value: f.TeamID})
	}
	if f.OwnerID != "" {
		q.Conds = append(q.Conds, models.Cond{Field: "owner_id", Op: models.OpEq, Value: f.OwnerID})
	}
	return q
}

// inPeriod are the conditions "field in [f.From, f.To)" on a time field.
// Times are stored to the millisecond and the engines compare them so: a
// bound within a millisecond moves up to the next, which keeps the meaning
// (a record of 12:00:00.007 is before 12:00:00.007300).
func (f ReportFilter) inPeriod(field string) []models.Cond {
	return []models.Cond{{Field: field, Op: models.OpGte, Value: upToMilli(f.From)}, {Field: field, Op: models.OpLt, Value: upToMilli(f.To)}}
}

func upToMilli(t time.Time) time.Time {
	if m := t.Truncate(time.Millisecond); m.Before(t) {
		return m.Add(time.Millisecond)
	}
	return t
}

// tally counts (and sums) coll's records as t asks.
func (s *Service) tally(ctx context.Context, coll string, t models.Tally) ([]models.TallyGroup, error) {
	groups, err := s.store.Tally(ctx, coll, t)
	if err != nil {
		return nil, fmt.Errorf("report over %s: %w", coll, err)
	}
	return groups, nil
}

// eachReported calls fn with every record q selects, as they are read.
// Reports that need whole records (tickets, surveys) read this way only the
// records of their period, through its index: q sorts by the period's field.
func eachReported[R any](ctx context.Context, r *Records[R], q models.Query, fn func(*R)) error {
	err := r.svc.store.Each(ctx, r.coll, q, func(decode func(out any) error) error {
		var rec R
		if err := decode(&rec); err != nil {
			return err
		}
		fn(&rec)
		return nil
	})
	if err != nil {
		return fmt.Errorf("report over %s: %w", r.coll, err)
	}
	return nil
}

// text is a grouped value as a string ("" for a missing field).
func text(v any) string {
	s, _ := v.(string)
	return s
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
	add := func(m map[string]int, v any, n int64) {
		label := text(v)
		if label == "" {
			label = none
		}
		m[label] += int(n)
	}
	groups, err := s.tally(ctx, s.Customers.coll, models.Tally{Query: reportQuery(a, f),
		By: []string{"stage", "customer_type", "source", "region", "industry", "value_tier"}})
	if err != nil {
		return out, err
	}
	for _, g := range groups {
		out.Total += int(g.Count)
		for i, m := range []map[string]int{out.ByStage, out.ByCustomerType, out.BySource, out.ByRegion, out.ByIndustry, out.ByValueTier} {
			add(m, g.Values[i], g.Count)
		}
	}
	created, err := s.tally(ctx, s.Customers.coll, models.Tally{Query: reportQuery(a, f, f.inPeriod("created_at")...),
		By: []string{"created_at"}, Days: []string{"created_at"}})
	for _, g := range created {
		day, _ := g.Values[0].(time.Time)
		y, w := day.ISOWeek()
		weeks[fmt.Sprintf("%d-W%02d", y, w)] += int(g.Count)
		months[day.Format("2006-01")] += int(g.Count)
	}
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
	groups, err := s.tally(ctx, s.Orders.coll, models.Tally{
		Query: models.Query{Tenant: tenant, Scope: models.Scope{All: true},
			Conds: append(revenueConds(st.Currency), models.Cond{Field: "ordered_on", Op: models.OpGte, Value: since})},
		By: []string{"customer_id", "ordered_on"}, Sum: []string{"amount"}})
	if err != nil {
		return nil, err
	}
	facts := map[string]*models.OrderFacts{}
	for _, g := range groups {
		customer := text(g.Values[0])
		day, ok := dayOf(text(g.Values[1]))
		if !ok {
			continue
		}
		f := facts[customer]
		if f == nil {
			f = &models.OrderFacts{CustomerID: customer}
			facts[customer] = f
		}
		f.Orders += int(g.Count)
		f.Amount += g.Sums[0]
		if day.After(f.LastOrder) {
			f.LastOrder = day
		}
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
	ids, err := s.tally(ctx, s.Customers.coll, models.Tally{Query: reportQuery(a, f), By: []string{"_id"}})
	if err != nil {
		return RFMReport{}, err
	}
	visible := make(map[string]bool, len(ids))
	for _, g := range ids {
		visible[text(g.Values[0])] = true
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
	// Every customer's tier as stored: those whose tier is already the
	// one wanted are not read or written, and customers holding an RFM tier
	// that no longer applies lose it.
	tiers, err := s.tally(ctx, s.Customers.coll, models.Tally{Query: models.Query{Tenant: tenant, Scope: models.Scope{All: true}},
		By: []string{"_id", "value_tier"}})
	if err != nil {
		return 0, err
	}
	current := make(map[string]string, len(tiers))
	for _, g := range tiers {
		id, tier := text(g.Values[0]), text(g.Values[1])
		current[id] = tier
		if _, scored := want[id]; !scored && slices.Contains(models.RFMSegments, tier) {
			want[id] = ""
		}
	}
	changed := 0
	for _, id := range slices.Sorted(maps.Keys(want)) {
		tier := want[id]
		if have, live := current[id]; !live || have == tier {
			continue // deleted, or nothing to change
		}
		before, err := s.Customers.live(ctx, tenant, id)
		if err != nil || before.ValueTier == tier {
			continue // deleted since, or changed since to what is wanted
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
