package api_test

import (
	"fmt"
	"testing"
	"time"
)

func TestCustomerReportCountsWhatEachRoleSees(t *testing.T) {
	w := newWorld(t)
	h := w.h
	h.newCustomer(w.r1, map[string]any{"name": "A", "stage": "lead", "region": "North", "industry": "pumps", "source": "referral"})
	h.newCustomer(w.r1, map[string]any{"name": "B", "stage": "customer", "region": "North"})
	h.newCustomer(w.r1, map[string]any{"name": "C", "stage": "customer", "region": "South", "customer_type": "vip"})
	h.newCustomer(w.r2, map[string]any{"name": "D", "stage": "lead", "region": "East"})

	all := h.call("GET", "/v1/reports/customers", w.admin, nil, 200)
	if all["total"] != 4.0 || fmt.Sprint(all["by_stage"]) != "map[customer:2 lead:2]" ||
		fmt.Sprint(all["by_region"]) != "map[East:1 North:2 South:1]" || all["by_customer_type"].(map[string]any)["vip"] != 1.0 ||
		fmt.Sprint(all["by_industry"]) != "map[(none):3 pumps:1]" || all["by_source"].(map[string]any)["referral"] != 1.0 {
		t.Fatalf("admin report %v", all)
	}
	month := h.clock.Now().UTC().Format("2006-01")
	y, wk := h.clock.Now().UTC().ISOWeek()
	if fmt.Sprint(all["new_per_month"]) != fmt.Sprintf("[map[count:4 period:%s]]", month) ||
		fmt.Sprint(all["new_per_week"]) != fmt.Sprintf("[map[count:4 period:%d-W%02d]]", y, wk) {
		t.Fatalf("new customers %v %v", all["new_per_month"], all["new_per_week"])
	}
	for who, want := range map[string]struct {
		as    account
		total float64
	}{"rep": {w.r1, 3}, "manager": {w.m1, 3}, "other manager": {w.m2, 1}, "other tenant": {w.adminB, 0}} {
		if got := h.call("GET", "/v1/reports/customers", want.as, nil, 200)["total"]; got != want.total {
			t.Errorf("%s sees %v customers, want %v", who, got, want.total)
		}
	}
	if got := h.call("GET", "/v1/reports/customers?owner_id="+w.r2.id, w.admin, nil, 200)["total"]; got != 1.0 {
		t.Errorf("owner filter: %v", got)
	}
	past := h.clock.Now().AddDate(0, -6, 0)
	old := h.call("GET", "/v1/reports/customers?from="+past.Format(time.DateOnly)+"&to="+past.AddDate(0, 1, 0).Format(time.DateOnly), w.admin, nil, 200)
	if old["total"] != 4.0 || len(old["new_per_month"].([]any)) != 0 {
		t.Errorf("a past period: %v", old)
	}
	for _, q := range []string{"from=2026-13-01", "to=yesterday", "from=2026-02-01&to=2026-01-01", "stage=lead"} {
		h.call("GET", "/v1/reports/customers?"+q, w.admin, nil, 422)
	}
}

// TestRFMSegmentsByHand seeds the orders of models.TestScoreRFMByHand through
// the API and checks the tiers written back.
func TestRFMSegmentsByHand(t *testing.T) {
	w := newWorld(t)
	h := w.h
	now := h.clock.Now()
	order := func(customer string, daysAgo int, amount int, extra map[string]any) {
		body := map[string]any{"customer_id": customer, "ordered_on": now.AddDate(0, 0, -daysAgo).Format(time.DateOnly),
			"items": []any{map[string]any{"product": "Pump", "quantity": 1, "unit_price": amount}}}
		for k, v := range extra {
			body[k] = v
		}
		h.call("POST", "/v1/orders", w.r1, body, 201)
	}
	ids := map[string]string{}
	for _, n := range []string{"a", "b", "c", "d", "e", "no orders"} {
		ids[n] = h.newCustomer(w.r1, map[string]any{"name": "RFM " + n})["id"].(string)
	}
	for i := range 5 {
		order(ids["a"], 1+i*7, 10000, nil) // last 1 day ago, 5 orders, 50,000
	}
	for i := range 4 {
		order(ids["b"], 10+i*7, 5000, nil) // 10 days, 4 orders, 20,000
	}
	order(ids["c"], 30, 90000, nil)
	order(ids["d"], 200, 1000, nil)
	order(ids["d"], 20, 500000, map[string]any{"status": "cancelled"}) // does not count
	for i := range 3 {
		order(ids["e"], 100+i, map[int]int{0: 1000, 1: 2000, 2: 2000}[i], nil) // 100 days, 3 orders, 5,000
	}
	order(ids["e"], 2, 99999, map[string]any{"currency": "USD"}) // another currency: does not count
	order(ids["no orders"], 400, 1000, nil)                      // outside the year

	h.call("POST", "/v1/reports/rfm/refresh", w.r1, nil, 403)
	if got := h.call("POST", "/v1/reports/rfm/refresh", w.admin, nil, 200)["changed"]; got != 5.0 {
		t.Fatalf("refresh changed %v customers, want 5", got)
	}
	want := map[string]string{"a": "champions", "b": "champions", "c": "loyal", "d": "lost", "e": "at_risk", "no orders": ""}
	for n, tier := range want {
		if got := h.call("GET", "/v1/customers/"+ids[n], w.r1, nil, 200)["value_tier"]; got != tier {
			t.Errorf("%s: tier %v, want %q", n, got, tier)
		}
	}
	report := h.call("GET", "/v1/reports/rfm", w.r1, nil, 200)
	if fmt.Sprint(report["segments"]) != "map[at_risk:1 champions:2 hibernating:0 lost:1 loyal:1 new:0 potential:0]" || len(report["customers"].([]any)) != 5 {
		t.Fatalf("RFM report %v", report["segments"])
	}
	if got := h.call("GET", "/v1/reports/rfm", w.r2, nil, 200)["customers"].([]any); len(got) != 0 {
		t.Errorf("another rep sees %d scored customers", len(got))
	}
	if got := h.call("POST", "/v1/reports/rfm/refresh", w.admin, nil, 200)["changed"]; got != 0.0 {
		t.Errorf("a second refresh changed %v", got)
	}
	// d orders again: it is recent now, and moves up.
	order(ids["d"], 0, 1000, nil)
	h.call("POST", "/v1/reports/rfm/refresh", w.admin, nil, 200)
	if got := h.call("GET", "/v1/customers/"+ids["d"], w.r1, nil, 200)["value_tier"]; got == "lost" {
		t.Errorf("d still lost after ordering today")
	}
}
