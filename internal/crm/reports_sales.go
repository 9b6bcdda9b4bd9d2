package crm

import (
	"context"
	"fmt"
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

// revenueConds select the orders that count as revenue: in the tenant's
// currency, neither draft nor cancelled.
func revenueConds(currency string) []models.Cond {
	return []models.Cond{{Field: "currency", Op: models.OpEq, Value: currency},
		{Field: "status", Op: models.OpNe, Value: "draft"}, {Field: "status", Op: models.OpNe, Value: "cancelled"}}
}

// firstDayFrom is the first date whose midnight (UTC) is at or after t: the
// dates of orders (YYYY-MM-DD) at or after t.
func firstDayFrom(t time.Time) string {
	day := t.UTC().Truncate(24 * time.Hour)
	if day.Before(t) {
		day = day.AddDate(0, 0, 1)
	}
	return day.Format(time.DateOnly)
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
	// Orders by customer and day, from the earlier of the period's start
	// and 180 days ago (the two quarters compared for risk).
	from := min(firstDayFrom(f.From), firstDayFrom(now.AddDate(0, 0, -181)))
	orders, err := s.tally(ctx, s.Orders.coll, models.Tally{
		Query: reportQuery(a, f, append(revenueConds(st.Currency), models.Cond{Field: "ordered_on", Op: models.OpGte, Value: from})...),
		By:    []string{"customer_id", "ordered_on"}, Sum: []string{"amount"}})
	if err != nil {
		return out, err
	}
	revenue := map[string]int64{}
	recent, before := map[string]int{}, map[string]int{}
	for _, g := range orders {
		customer := text(g.Values[0])
		day, ok := dayOf(text(g.Values[1]))
		if !ok {
			continue
		}
		if f.within(day) {
			revenue[customer] += g.Sums[0]
			out.Revenue += g.Sums[0]
		}
		switch age := now.Sub(day); {
		case age < 90*24*time.Hour:
			recent[customer] += int(g.Count)
		case age < 180*24*time.Hour:
			before[customer] += int(g.Count)
		}
	}
	if out.TopCustomers, err = s.topCustomers(ctx, a, f, revenue, 20); err != nil {
		return out, err
	}
	ratings, err := s.tally(ctx, s.Customers.coll, models.Tally{Query: reportQuery(a, f), By: []string{"credit.rating"}})
	if err != nil {
		return out, err
	}
	for _, g := range ratings {
		out.ByRating[ratingOf(g.Values[0])] += int(g.Count)
	}
	owing, err := s.tally(ctx, s.Customers.coll, models.Tally{
		Query: reportQuery(a, f, models.Cond{Field: "credit.outstanding", Op: models.OpGt, Value: int64(0)}),
		By:    []string{"_id", "number", "name", "credit.rating", "credit.outstanding"}})
	if err != nil {
		return out, err
	}
	for _, g := range owing {
		out.Outstanding = append(out.Outstanding, CustomerAmount{CustomerID: text(g.Values[0]), Number: text(g.Values[1]),
			Name: text(g.Values[2]), Rating: ratingOf(g.Values[3]), Amount: wholeNumber(g.Values[4])})
	}
	idleSince := now.AddDate(0, 0, -idleDays)
	active, err := s.tally(ctx, s.Customers.coll, models.Tally{
		Query: reportQuery(a, f, models.Cond{Field: "stage", Op: models.OpIn, Value: []string{"customer", "loyal"}}),
		By:    []string{"_id", "number", "name", "last_interaction_at"}})
	if err != nil {
		return out, err
	}
	for _, g := range active {
		id := text(g.Values[0])
		var reasons []string
		if last, ok := g.Values[3].(time.Time); !ok || last.Before(idleSince) {
			reasons = append(reasons, fmt.Sprintf("no interaction for %d days", idleDays))
		}
		if b := before[id]; b > 0 && recent[id]*2 < b {
			reasons = append(reasons, fmt.Sprintf("%d orders in the last 90 days, %d in the 90 before", recent[id], b))
		}
		if len(reasons) > 0 {
			out.AtRisk = append(out.AtRisk, AtRiskCustomer{CustomerID: id, Number: text(g.Values[1]), Name: text(g.Values[2]), Reasons: reasons})
		}
	}
	sort.Slice(out.AtRisk, func(i, j int) bool { return out.AtRisk[i].CustomerID < out.AtRisk[j].CustomerID })
	byAmount(out.Outstanding)
	return out, nil
}

// byAmount sorts customers by amount, largest first, then by id.
func byAmount(l []CustomerAmount) {
	sort.Slice(l, func(i, j int) bool {
		return l[i].Amount > l[j].Amount || (l[i].Amount == l[j].Amount && l[i].CustomerID < l[j].CustomerID)
	})
}

// topCustomers returns the n customers with the most revenue among those
// the report covers, largest first. Revenue counts orders the actor may
// see; the customer must be visible too, so candidates are looked up in
// order, a few at a time, until n are found.
func (s *Service) topCustomers(ctx context.Context, a models.Actor, f ReportFilter, revenue map[string]int64, n int) ([]CustomerAmount, error) {
	candidates := make([]CustomerAmount, 0, len(revenue))
	for id, amount := range revenue {
		if amount > 0 {
			candidates = append(candidates, CustomerAmount{CustomerID: id, Amount: amount})
		}
	}
	byAmount(candidates)
	top := []CustomerAmount{}
	for start := 0; start < len(candidates) && len(top) < n; start += 2 * n {
		batch := candidates[start:min(start+2*n, len(candidates))]
		ids := make([]string, len(batch))
		for i, c := range batch {
			ids[i] = c.CustomerID
		}
		found, err := s.tally(ctx, s.Customers.coll, models.Tally{
			Query: reportQuery(a, f, models.Cond{Field: "_id", Op: models.OpIn, Value: ids}), By: []string{"_id", "number", "name"}})
		if err != nil {
			return nil, err
		}
		named := map[string][2]string{}
		for _, g := range found {
			named[text(g.Values[0])] = [2]string{text(g.Values[1]), text(g.Values[2])}
		}
		for _, c := range batch {
			if nn, ok := named[c.CustomerID]; ok && len(top) < n {
				c.Number, c.Name = nn[0], nn[1]
				top = append(top, c)
			}
		}
	}
	return top, nil
}

// ratingOf is a grouped credit rating, "unrated" when there is none.
func ratingOf(v any) string {
	if rating := text(v); rating != "" {
		return rating
	}
	return "unrated"
}

// wholeNumber is a grouped number as an int64 (amounts are whole cents).
func wholeNumber(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case float64:
		return int64(x)
	}
	return 0
}
