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

// window is a from/to query around the test clock.
func window(h *harness) string {
	now := h.clock.Now().UTC()
	return "from=" + now.AddDate(0, 0, -200).Format(time.RFC3339) + "&to=" + now.AddDate(0, 0, 30).Format(time.RFC3339)
}

func TestSalesAndLoyaltyReports(t *testing.T) {
	w := newWorld(t)
	h := w.h
	now := h.clock.Now()
	x := h.newCustomer(w.r1, map[string]any{"name": "X", "stage": "customer"})["id"].(string)
	y := h.newCustomer(w.r1, map[string]any{"name": "Y", "stage": "lead"})["id"].(string)
	z := h.newCustomer(w.r1, map[string]any{"name": "Z", "stage": "loyal"})["id"].(string)
	order := func(customer string, daysAgo, amount int, status string) string {
		return h.call("POST", "/v1/orders", w.r1, map[string]any{"customer_id": customer, "status": status,
			"ordered_on": now.AddDate(0, 0, -daysAgo).Format(time.DateOnly),
			"items":      []any{map[string]any{"product": "Pump", "quantity": 1, "unit_price": amount}}}, 201)["id"].(string)
	}
	order(x, 1, 30000, "confirmed")
	order(x, 10, 20000, "completed")
	paid := order(y, 5, 10000, "confirmed")
	h.call("POST", "/v1/payments", w.r1, map[string]any{"order_id": paid, "method": "cash", "amount": 10000}, 201)
	order(z, 3, 99999, "cancelled")
	for _, d := range []int{100, 130, 170} {
		order(z, d, 1000, "completed")
	}
	h.call("POST", "/v1/interactions", w.r1, map[string]any{"customer_id": x, "channel": "phone"}, 201)

	sales := h.call("GET", "/v1/reports/sales?"+window(h)+"&idle_days=30", w.r1, nil, 200)
	// Revenue in the window: X 50,000, Y 10,000, Z 3,000 (the cancelled one does not count).
	if sales["revenue"] != 63000.0 || fmt.Sprint(sales["top_customers"]) != fmt.Sprintf("[map[amount:50000 customer_id:%s name:X number:%s] map[amount:10000 customer_id:%s name:Y number:%s] map[amount:3000 customer_id:%s name:Z number:%s]]",
		x, num(t, h, w.r1, x), y, num(t, h, w.r1, y), z, num(t, h, w.r1, z)) {
		t.Fatalf("revenue %v, top %v", sales["revenue"], sales["top_customers"])
	}
	var owed []string
	for _, o := range sales["outstanding"].([]any) {
		o := o.(map[string]any)
		owed = append(owed, fmt.Sprintf("%v %v", o["name"], o["amount"]))
	}
	if fmt.Sprint(owed) != "[X 50000 Z 3000]" {
		t.Errorf("outstanding %v", owed)
	}
	// Z: active, never contacted, 0 orders in the last 90 days against 3 before.
	atRisk := sales["at_risk"].([]any)
	if len(atRisk) != 1 || atRisk[0].(map[string]any)["name"] != "Z" || len(atRisk[0].(map[string]any)["reasons"].([]any)) != 2 {
		t.Errorf("at risk %v", atRisk)
	}
	ratings := 0.0
	for _, n := range sales["by_credit_rating"].(map[string]any) {
		ratings += n.(float64)
	}
	if ratings != 3 {
		t.Errorf("ratings cover %v customers", ratings)
	}
	if got := h.call("GET", "/v1/reports/sales?"+window(h), w.r2, nil, 200)["revenue"]; got != 0.0 {
		t.Errorf("another rep sees revenue %v", got)
	}
	h.call("GET", "/v1/reports/sales?idle_days=0", w.r1, nil, 422)

	for _, e := range []map[string]any{{"customer_id": x, "kind": "earn", "points": 100}, {"customer_id": x, "kind": "earn", "points": 50},
		{"customer_id": x, "kind": "redeem", "points": 30}, {"customer_id": y, "kind": "earn", "points": 10}, {"customer_id": y, "kind": "adjust", "points": -5}} {
		e["reason"] = "test"
		h.call("POST", "/v1/loyalty_entries", w.r1, e, 201)
	}
	loyalty := h.call("GET", "/v1/reports/loyalty?"+window(h), w.r1, nil, 200)
	members := 0.0
	for _, n := range loyalty["members_by_tier"].(map[string]any) {
		members += n.(float64)
	}
	if loyalty["earned"] != 160.0 || loyalty["redeemed"] != 30.0 || loyalty["adjusted"] != -5.0 || loyalty["expired"] != 0.0 || members != 3 {
		t.Errorf("loyalty %v", loyalty)
	}
}

func num(t *testing.T, h *harness, as account, id string) string {
	return h.call("GET", "/v1/customers/"+id, as, nil, 200)["number"].(string)
}

func TestActivityServiceAndFunnelReports(t *testing.T) {
	w := newWorld(t)
	h := w.h
	start := h.clock.Now()
	x := h.newCustomer(w.r1, map[string]any{"name": "X", "stage": "customer"})["id"].(string)
	f := h.newCustomer(w.r1, map[string]any{"name": "F", "stage": "lead"})["id"].(string)
	h.newCustomer(w.r1, map[string]any{"name": "Y", "stage": "lead"})

	h.call("POST", "/v1/interactions", w.r1, map[string]any{"customer_id": x, "channel": "visit",
		"check_in": map[string]any{"lat": 23.1, "lng": 113.2, "accuracy": 10}}, 201)
	h.call("POST", "/v1/interactions", w.r1, map[string]any{"customer_id": x, "channel": "visit"}, 201)
	h.call("POST", "/v1/interactions", w.r1, map[string]any{"customer_id": x, "channel": "phone"}, 201)
	task := func(due time.Duration) string {
		return h.call("POST", "/v1/tasks", w.r1, map[string]any{"customer_id": x, "title": "Call", "due_at": start.Add(due).Format(time.RFC3339)}, 201)["id"].(string)
	}
	onTime, late := task(time.Hour), task(2*time.Hour)
	// Due to the millisecond when it is done (below), two hours on.
	atDue := h.call("POST", "/v1/tasks", w.r1, map[string]any{"customer_id": x, "title": "Call", "due_at": start.Add(2 * time.Hour).Format(time.RFC3339Nano)}, 201)["id"].(string)
	// Left open: overdue once the clock passes them; the report counts the
	// two (one group of its tally) twice.
	task(150 * time.Minute)
	task(150 * time.Minute)
	h.call("PATCH", "/v1/tasks/"+task(30*time.Minute), w.r1, map[string]any{"status": "cancelled"}, 200) // counted nowhere
	h.call("PATCH", "/v1/tasks/"+onTime, w.r1, map[string]any{"status": "done"}, 200)

	k1 := h.call("POST", "/v1/tickets", w.r1, map[string]any{"customer_id": x, "type": "repair", "title": "Leak", "priority": "urgent"}, 201)["id"].(string)
	h.call("POST", "/v1/tickets", w.r1, map[string]any{"customer_id": x, "type": "question", "title": "How?"}, 201)
	for _, s := range []map[string]any{{"csat": 5, "nps": 10, "ratings": map[string]any{"product_quality": 4}},
		{"csat": 3, "nps": 5, "ratings": map[string]any{"product_quality": 2}}, {"nps": 8}} {
		s["customer_id"] = x
		h.call("POST", "/v1/surveys", w.r1, s, 201)
	}

	// Days pass (signing in again each time: access tokens expire): the
	// urgent ticket is resolved after 2 hours, the late task is done, F moves
	// on twice.
	rep := func(d time.Duration) account {
		h.clock.Advance(d)
		return h.login(w.r1.email, w.r1.password)
	}
	resolver := rep(2 * time.Hour)
	h.call("PATCH", "/v1/tasks/"+atDue, resolver, map[string]any{"status": "done"}, 200) // done at its due time: on time
	h.call("PATCH", "/v1/tickets/"+k1, resolver, map[string]any{"status": "in_progress"}, 200)
	h.call("PATCH", "/v1/tickets/"+k1, resolver, map[string]any{"status": "resolved"}, 200)
	h.call("PATCH", "/v1/tasks/"+late, rep(time.Hour), map[string]any{"status": "done"}, 200)
	h.call("PATCH", "/v1/customers/"+f, rep(45*time.Hour), map[string]any{"stage": "prospect"}, 200)
	h.call("PATCH", "/v1/customers/"+f, rep(24*time.Hour), map[string]any{"stage": "opportunity"}, 200)
	r1 := rep(24 * time.Hour) // the question's SLA (normal priority) has passed
	m1 := h.login(w.m1.email, w.m1.password)

	activity := h.call("GET", "/v1/reports/activity?"+window(h), m1, nil, 200)["reps"].([]any)
	if len(activity) != 1 {
		t.Fatalf("activity %v", activity)
	}
	r := activity[0].(map[string]any)
	y, wk := start.UTC().ISOWeek()
	week := fmt.Sprintf("%d-W%02d", y, wk)
	if r["user_id"] != w.r1.id || fmt.Sprint(r["per_week"]) != "map["+week+":map[phone:1 visit:2]]" || r["visits"] != 2.0 || r["checked_in"] != 1.0 ||
		r["done_on_time"] != 2.0 || r["done_late"] != 1.0 || r["overdue"] != 2.0 {
		t.Errorf("rep activity %v", r)
	}

	service := h.call("GET", "/v1/reports/service?"+window(h), r1, nil, 200)
	if fmt.Sprint(service["by_type"]) != "map[question:1 repair:1]" || fmt.Sprint(service["by_status"]) != "map[assigned:1 resolved:1]" && fmt.Sprint(service["by_status"]) != "map[new:1 resolved:1]" {
		t.Errorf("tickets %v %v", service["by_type"], service["by_status"])
	}
	if service["avg_resolution_hours"] != 2.0 || service["sla_breaches"] != 1.0 {
		t.Errorf("resolution %v h, breaches %v", service["avg_resolution_hours"], service["sla_breaches"])
	}
	// CSAT (5+3)/2 = 4; NPS: 1 promoter, 1 detractor of 3 = 0; product quality (4+2)/2 = 3.
	if service["surveys"] != 3.0 || service["avg_csat"] != 4.0 || service["nps"] != 0.0 || fmt.Sprint(service["per_topic"]) != "map[product_quality:3]" ||
		len(service["per_month"].([]any)) != 1 {
		t.Errorf("satisfaction %v", service)
	}

	funnel := h.call("GET", "/v1/reports/funnel?"+window(h), r1, nil, 200)["steps"].([]any)
	got := []string{}
	for _, s := range funnel {
		s := s.(map[string]any)
		got = append(got, fmt.Sprintf("%v %v/%v %v %vd", s["stage"], s["advanced"], s["entered"], s["conversion"], s["avg_days_in_stage"]))
	}
	// lead: F and Y entered, F advanced; F stayed 2 days in lead, 1 in prospect.
	if fmt.Sprint(got) != "[lead 1/2 0.5 2d prospect 1/1 1 1d opportunity 0/1 0 0d customer 0/1 0 0d loyal 0/0 0 0d]" {
		t.Errorf("funnel %v", got)
	}
	h.call("GET", "/v1/reports/funnel?idle_days=3", r1, nil, 422)
}
