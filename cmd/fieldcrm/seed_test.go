package main

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net/url"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestSeedDemoTenantAndItsReports seeds a demo tenant, then checks every
// report against numbers computed here, by hand, from the records the REST
// API lists: the report code and this test share nothing but the records.
func TestSeedDemoTenantAndItsReports(t *testing.T) {
	vars := isolatedVars(t, "seed")
	vars["FIELDCRM_JWT_SECRET"] = "cli-test-secret-of-at-least-32-bytes-long!"
	getenv := func(k string) string { return vars[k] }
	var stdout, stderr bytes.Buffer
	for _, bad := range [][]string{{"seed"}, {"seed", "--demo", "--customers", "0"}, {"seed", "--demo", "--password", "short"},
		{"seed", "--demo", "--email-domain", "nodots"}} {
		if err := run(context.Background(), bad, getenv, &stdout, &stderr); err == nil {
			t.Errorf("%v succeeded", bad)
		}
	}
	args := []string{"seed", "--demo", "--customers", "50", "--seed", "4", "--email-domain", "seed.test", "--password", "demo-password"}
	if err := run(context.Background(), args, getenv, &stdout, &stderr); err != nil {
		t.Fatalf("seed: %v\n%s", err, stderr.String())
	}
	summary := stdout.String()
	if !regexp.MustCompile(`users: 19 in 4 teams`).MatchString(summary) || !strings.Contains(summary, "50 customers") {
		t.Fatalf("summary:\n%s", summary)
	}
	// Seeding the same addresses again is refused, not a second tenant.
	if err := run(context.Background(), args, getenv, &stdout, &stderr); err == nil || !strings.Contains(err.Error(), "email-domain") {
		t.Fatalf("a second seed with the same e-mails: %v", err)
	}

	p := startServe(t, vars)
	defer p.stop(t)
	status, login := p.call(t, "POST", "/v1/auth/login", "", map[string]any{"email": "admin@seed.test", "password": "demo-password", "device_id": "seed-test"})
	if status != 200 {
		t.Fatalf("login: %d %v", status, login)
	}
	token := login["access_token"].(string)
	all := func(path string) []map[string]any {
		var out []map[string]any
		after := ""
		for {
			status, page := p.call(t, "GET", path+"?limit=200&after="+url.QueryEscape(after), token, nil)
			if status != 200 {
				t.Fatalf("GET %s: %d %v", path, status, page)
			}
			for _, r := range page["data"].([]any) {
				out = append(out, r.(map[string]any))
			}
			next, _ := page["next_after"].(string)
			if next == "" {
				return out
			}
			after = next
		}
	}
	now := time.Now().UTC()
	// The reports read from and to as dates: midnight UTC.
	from, to := now.AddDate(0, 0, -400).Truncate(24*time.Hour), now.AddDate(0, 0, 1).Truncate(24*time.Hour)
	window := "?from=" + from.Format(time.DateOnly) + "&to=" + to.Format(time.DateOnly)
	report := func(name string) map[string]any {
		status, r := p.call(t, "GET", "/v1/reports/"+name+window, token, nil)
		if status != 200 {
			t.Fatalf("report %s: %d %v", name, status, r)
		}
		return r
	}
	at := func(v any) time.Time {
		s, _ := v.(string)
		ts, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatalf("time %v: %v", v, err)
		}
		return ts
	}
	within := func(ts time.Time) bool { return !ts.Before(from) && ts.Before(to) }

	// A realistic tenant: teams, Chinese and English names, a year of history.
	customers := all("/v1/customers")
	users := all("/v1/users")
	if len(customers) != 50 || len(users) != 19 {
		t.Fatalf("%d customers, %d users", len(customers), len(users))
	}
	chinese, english, oldest := 0, 0, now
	for _, c := range customers {
		name := c["name"].(string)
		if strings.IndexFunc(name, func(r rune) bool { return r >= 0x4e00 && r <= 0x9fff }) >= 0 {
			chinese++
		} else {
			english++
		}
		if created := at(c["created_at"]); created.Before(oldest) {
			oldest = created
		}
	}
	if chinese == 0 || english == 0 || now.Sub(oldest) < 200*24*time.Hour {
		t.Fatalf("%d Chinese and %d English names, the oldest customer from %s", chinese, english, oldest)
	}
	orders, interactions, tasks := all("/v1/orders"), all("/v1/interactions"), all("/v1/tasks")
	tickets, surveys, points := all("/v1/tickets"), all("/v1/surveys"), all("/v1/loyalty_entries")
	if len(orders) == 0 || len(interactions) == 0 || len(tasks) == 0 || len(tickets) == 0 || len(surveys) == 0 || len(points) == 0 {
		t.Fatalf("%d orders, %d interactions, %d tasks, %d tickets, %d surveys, %d loyalty entries",
			len(orders), len(interactions), len(tasks), len(tickets), len(surveys), len(points))
	}

	// Customers by stage and region.
	byStage, byRegion := map[string]any{}, map[string]any{}
	for _, c := range customers {
		byStage[c["stage"].(string)] = float64(count(byStage[c["stage"].(string)]) + 1)
		byRegion[c["region"].(string)] = float64(count(byRegion[c["region"].(string)]) + 1)
	}
	r := report("customers")
	if count(r["total"]) != 50 || !reflect.DeepEqual(r["by_stage"], byStage) || !reflect.DeepEqual(r["by_region"], byRegion) {
		t.Errorf("customers report %v %v %v, by hand %v %v", r["total"], r["by_stage"], r["by_region"], byStage, byRegion)
	}

	// Revenue: orders not draft or cancelled.
	var revenue float64
	for _, o := range orders {
		day, err := time.Parse(time.DateOnly, o["ordered_on"].(string))
		if err == nil && within(day) && o["status"] != "draft" && o["status"] != "cancelled" && o["currency"] == "CNY" {
			revenue += o["amount"].(float64)
		}
	}
	if r := report("sales"); r["revenue"] != revenue || revenue == 0 {
		t.Errorf("revenue %v, by hand %v", r["revenue"], revenue)
	}

	// Activity per rep: interactions and visits, follow-ups on time, late, overdue.
	type activity struct{ interactions, visits, checkedIn, onTime, late, overdue int }
	want := map[string]*activity{}
	rep := func(id any) *activity {
		if want[id.(string)] == nil {
			want[id.(string)] = &activity{}
		}
		return want[id.(string)]
	}
	for _, i := range interactions {
		a := rep(i["created_by"])
		a.interactions++
		if i["channel"] == "visit" {
			a.visits++
			if i["check_in"] != nil {
				a.checkedIn++
			}
		}
	}
	// "Overdue" is decided by the server's clock when it reports: a task
	// falling due while the report is asked for may count either way.
	asked := time.Now()
	activityReport := report("activity")
	answered := time.Now()
	undecided := map[string]int{}
	for _, task := range tasks {
		due := at(task["due_at"])
		if !within(due) {
			continue
		}
		a := rep(task["assignee_id"])
		switch {
		case task["status"] == "done" && !at(task["completed_at"]).After(due):
			a.onTime++
		case task["status"] == "done":
			a.late++
		case due.Before(asked):
			a.overdue++
		case due.Before(answered):
			undecided[task["assignee_id"].(string)]++
		}
	}
	got := map[string]*activity{}
	for _, x := range activityReport["reps"].([]any) {
		x := x.(map[string]any)
		a := &activity{visits: count(x["visits"]), checkedIn: count(x["checked_in"]), onTime: count(x["done_on_time"]),
			late: count(x["done_late"]), overdue: count(x["overdue"])}
		for _, week := range x["per_week"].(map[string]any) {
			for _, n := range week.(map[string]any) {
				a.interactions += count(n)
			}
		}
		got[x["user_id"].(string)] = a
	}
	for id := range mergeKeys(got, want) {
		if g, w := got[id], want[id]; g != nil && w != nil && g.overdue >= w.overdue && g.overdue <= w.overdue+undecided[id] {
			w.overdue = g.overdue
		}
		if !reflect.DeepEqual(got[id], want[id]) {
			t.Errorf("activity of %s: report %+v, by hand %+v", id, got[id], want[id])
		}
	}

	// Service: tickets by status, SLA breaches, CSAT.
	byStatus := map[string]any{}
	breaches, breachesUndecided := 0, 0
	asked = time.Now()
	r = report("service")
	answered = time.Now()
	for _, tk := range tickets {
		byStatus[tk["status"].(string)] = float64(count(byStatus[tk["status"].(string)]) + 1)
		sla := at(tk["sla_due_at"])
		switch {
		case tk["resolved_at"] != nil && at(tk["resolved_at"]).After(sla), tk["resolved_at"] == nil && asked.After(sla):
			breaches++
		case tk["resolved_at"] == nil && answered.After(sla):
			breachesUndecided++ // its SLA ran out while the report was asked for
		}
	}
	if n := count(r["sla_breaches"]); n >= breaches && n <= breaches+breachesUndecided {
		breaches = n
	}
	csat := 0.0
	for _, s := range surveys {
		csat += s["csat"].(float64)
	}
	csat = math.Round(csat/float64(len(surveys))*100) / 100
	if !reflect.DeepEqual(r["by_status"], byStatus) || count(r["sla_breaches"]) != breaches || count(r["surveys"]) != len(surveys) || r["avg_csat"] != csat {
		t.Errorf("service report %v %v %v %v, by hand %v %v %v %v", r["by_status"], r["sla_breaches"], r["surveys"], r["avg_csat"],
			byStatus, breaches, len(surveys), csat)
	}

	// Loyalty: points earned and redeemed.
	var earned, redeemed float64
	for _, e := range points {
		switch e["kind"] {
		case "earn":
			earned += e["points"].(float64)
		case "redeem":
			redeemed += e["points"].(float64)
		}
	}
	if r := report("loyalty"); r["earned"] != earned || r["redeemed"] != redeemed {
		t.Errorf("loyalty report %v/%v, by hand %v/%v", r["earned"], r["redeemed"], earned, redeemed)
	}

	// Funnel: customers entering each stage, from the stage histories.
	entered := map[string]int{}
	for _, c := range customers {
		for _, move := range c["stage_history"].([]any) {
			move := move.(map[string]any)
			if within(at(move["at"])) {
				entered[move["to"].(string)]++
			}
		}
	}
	for _, s := range report("funnel")["steps"].([]any) {
		s := s.(map[string]any)
		if count(s["entered"]) != entered[s["stage"].(string)] {
			t.Errorf("funnel: %v entered %v, by hand %d", s["stage"], s["entered"], entered[s["stage"].(string)])
		}
	}
	if entered["lead"] == 0 || entered["customer"] == 0 {
		t.Errorf("a funnel with no leads or no customers: %v", entered)
	}

	// A manager reads their team's numbers only.
	status, login = p.call(t, "POST", "/v1/auth/login", "", map[string]any{"email": "manager1@seed.test", "password": "demo-password", "device_id": "seed-test"})
	if status != 200 {
		t.Fatalf("manager login: %d %v", status, login)
	}
	status, me := p.call(t, "GET", "/v1/me", login["access_token"].(string), nil)
	if status != 200 {
		t.Fatalf("me: %d %v", status, me)
	}
	managed := 0
	teamIDs := fmt.Sprint(me["managed_team_ids"])
	for _, c := range customers {
		if strings.Contains(teamIDs, c["team_id"].(string)) && c["team_id"] != "" {
			managed++
		}
	}
	status, r = p.call(t, "GET", "/v1/reports/customers"+window, login["access_token"].(string), nil)
	if status != 200 || count(r["total"]) != managed || managed == 0 || managed == 50 {
		t.Errorf("the manager's customers report counts %v, their team has %d of 50", r["total"], managed)
	}
}

func count(v any) int {
	f, _ := v.(float64)
	n, _ := v.(int)
	return n + int(f)
}

func mergeKeys[T any](a, b map[string]T) map[string]bool {
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	return keys
}
