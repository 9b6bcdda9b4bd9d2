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
