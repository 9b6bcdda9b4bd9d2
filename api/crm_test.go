package api_test

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fieldcrm/fieldcrm/models"
)

// post, get and patch send a request and insist on the status; they return the
// decoded JSON body.
func (h *harness) call(method, path string, as account, body any, want int, headers ...string) map[string]any {
	h.t.Helper()
	r := h.do(method, path, as.access, body, headers...)
	h.expect(r, want, method+" "+path)
	if len(r.body) == 0 {
		return nil
	}
	return r.json(h.t)
}

func (h *harness) newCustomer(as account, body map[string]any) map[string]any {
	h.t.Helper()
	return h.call("POST", "/v1/customers", as, body, 201)
}

func ids(t *testing.T, page map[string]any) []string {
	t.Helper()
	var out []string
	for _, item := range page["data"].([]any) {
		out = append(out, item.(map[string]any)["id"].(string))
	}
	slices.Sort(out)
	return out
}

func sorted(list ...string) []string {
	slices.Sort(list)
	return list
}

func TestCustomerLifecycleWithNumbersVersionsAndAudit(t *testing.T) {
	w := newWorld(t)
	h := w.h
	r := h.do("POST", "/v1/customers", w.r1.access, map[string]any{
		"name": "  Ａｃｍｅ  Trading ", "kind": "company",
		"phones":  []any{map[string]any{"label": "Office", "number": "(020) 8888 6666"}},
		"emails":  []any{map[string]any{"address": "Sales@Acme.COM"}},
		"address": map[string]any{"city": "广州", "street": "天河路 1 号"},
	})
	h.expect(r, 201, "create customer")
	c := r.json(t)
	id := c["id"].(string)
	number := c["number"].(string)
	if !models.ValidCustomerNumber(number) || !strings.HasPrefix(number, fmt.Sprintf("C%d-", h.clock.Now().Year())) {
		t.Fatalf("customer number %q", number)
	}
	if c["name"] != "Acme Trading" || c["phones"].([]any)[0].(map[string]any)["number"] != "+862088886666" ||
		c["emails"].([]any)[0].(map[string]any)["address"] != "sales@acme.com" || c["owner_id"] != w.r1.id {
		t.Fatalf("not normalized or owned: %v", c)
	}
	if r.header.Get("ETag") != `"1"` || r.header.Get("Location") != "/v1/customers/"+id {
		t.Fatalf("ETag %q Location %q", r.header.Get("ETag"), r.header.Get("Location"))
	}

	h.clock.Advance(time.Minute)
	c = h.call("PATCH", "/v1/customers/"+id, w.r1, map[string]any{"stage": "prospect"}, 200, "If-Match", `"1"`)
	if c["version"] != 2.0 || len(c["stage_history"].([]any)) != 2 || c["number"] != number {
		t.Fatalf("after patch: %v", c)
	}
	// A manager's console still holding version 1 must not overwrite the rep.
	h.call("PATCH", "/v1/customers/"+id, w.m1, map[string]any{"stage": "lead"}, 412, "If-Match", `"1"`)
	h.call("PATCH", "/v1/customers/"+id, w.m1, map[string]any{"stage": "opportunity"}, 200, "If-Match", `"2"`)
	h.call("PATCH", "/v1/customers/"+id, w.r1, map[string]any{"industry": "retail"}, 200) // no If-Match: applies on top
	c = h.call("GET", "/v1/customers/"+id, w.r1, nil, 200)
	history := c["stage_history"].([]any)
	last := history[len(history)-1].(map[string]any)
	if c["stage"] != "opportunity" || c["industry"] != "retail" || last["from"] != "prospect" || last["by"] != w.m1.id {
		t.Fatalf("stage history or merge of edits wrong: %v", c)
	}

	audit := h.call("GET", "/v1/audit?record_id="+id, w.admin, nil, 200)["data"].([]any)
	if len(audit) != 4 {
		t.Fatalf("want 4 audit entries, got %d: %v", len(audit), audit)
	}
	newest := audit[0].(map[string]any)
	change := newest["changes"].([]any)[0].(map[string]any)
	if newest["actor_id"] != w.r1.id || change["field"] != "industry" || change["old"] != "" || change["new"] != "retail" {
		t.Fatalf("audit entry: %v", newest)
	}
	h.call("GET", "/v1/audit", w.m1, nil, 403)

	h.call("DELETE", "/v1/customers/"+id, w.r1, nil, 412, "If-Match", `"1"`)
	h.call("DELETE", "/v1/customers/"+id, w.r1, nil, 204)
	c = h.call("GET", "/v1/customers/"+id, w.r1, nil, 200)
	if c["deleted_at"] == nil {
		t.Fatal("deleted customer is not a tombstone")
	}
	if got := ids(t, h.call("GET", "/v1/customers", w.r1, nil, 200)); len(got) != 0 {
		t.Fatalf("tombstone listed: %v", got)
	}
	h.call("PATCH", "/v1/customers/"+id, w.r1, map[string]any{"stage": "lead"}, 404)
}

func TestCustomerNumbersAreUniqueUnderConcurrencyAndAfterCounterLoss(t *testing.T) {
	w := newWorld(t)
	h := w.h
	const n = 150 // in parallel; more only measures the machine (SQLite serializes the writes)
	numbers := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := h.do("POST", "/v1/customers", w.r1.access, map[string]any{"name": fmt.Sprintf("Parallel %d", i)})
			if r.status != 201 {
				errs <- fmt.Errorf("create %d: %d %s", i, r.status, r.body)
				return
			}
			numbers[i] = r.json(t)["number"].(string)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, num := range numbers {
		if seen[num] || !models.ValidCustomerNumber(num) {
			t.Fatalf("number %q repeated or invalid", num)
		}
		seen[num] = true
	}
	// Redis loses the counter (a restart without persistence): numbers go on
	// after the highest one ever claimed, never repeating.
	if err := h.redis.Client.Del(context.Background(), h.redis.Prefix+"counter:customer-number:"+w.r1.tenantID(t, h)).Err(); err != nil {
		t.Fatal(err)
	}
	c := h.newCustomer(w.r1, map[string]any{"name": "After the flush"})
	if num := c["number"].(string); seen[num] || !strings.Contains(num, fmt.Sprintf("-%06d-", n+1)) {
		t.Fatalf("number after counter loss: %s", num)
	}
	seen[c["number"].(string)] = true
	// Redis goes back (an AOF that lost its last second, a promoted replica):
	// the counter holds an old value; the next number is still a new one.
	if err := h.redis.Client.Set(context.Background(), h.redis.Prefix+"counter:customer-number:"+w.r1.tenantID(t, h), 3, 0).Err(); err != nil {
		t.Fatal(err)
	}
	c = h.newCustomer(w.r1, map[string]any{"name": "After the rewind"})
	if num := c["number"].(string); seen[num] || !strings.Contains(num, fmt.Sprintf("-%06d-", n+2)) {
		t.Fatalf("number after the counter went back: %s", num)
	}
}

func (a account) tenantID(t *testing.T, h *harness) string {
	t.Helper()
	return h.call("GET", "/v1/me", a, nil, 200)["user"].(map[string]any)["tenant_id"].(string)
}

func TestDuplicateDetectionAcrossFormatsAndVariants(t *testing.T) {
	w := newWorld(t)
	h := w.h
	first := h.newCustomer(w.r1, map[string]any{"name": "Acme Co., Ltd.", "phones": []any{map[string]any{"number": "13800138000"}},
		"emails": []any{map[string]any{"address": "boss@acme.cn"}}})
	cases := []struct {
		name string
		body map[string]any
	}{
		{"phone in another format", map[string]any{"name": "Someone", "phones": []any{map[string]any{"number": "+86 138-0013-8000"}}}},
		{"e-mail in capitals", map[string]any{"name": "Other", "emails": []any{map[string]any{"address": "BOSS@ACME.CN"}}}},
		{"company with another legal form", map[string]any{"name": "ACME Inc"}},
		{"company in full width", map[string]any{"name": "ＡＣＭＥ 有限公司"}},
	}
	for _, c := range cases {
		r := h.do("POST", "/v1/customers", w.r2.access, c.body) // another team: duplicates are tenant-wide
		h.expect(r, 409, c.name)
		p := r.json(t)
		dups := p["duplicates"].([]any)
		if p["type"] != "/problems/duplicate-customer" || len(dups) != 1 || dups[0].(map[string]any)["id"] != first["id"] {
			t.Fatalf("%s: %s", c.name, r.body)
		}
	}
	// Not a duplicate: another tenant, or a different company.
	h.newCustomer(w.adminB, map[string]any{"name": "Acme Co., Ltd.", "phones": []any{map[string]any{"number": "13800138000"}}})
	h.newCustomer(w.r1, map[string]any{"name": "Acme Tools"})

	flagged := h.call("POST", "/v1/customers?on_duplicate=flag", w.r2, cases[0].body, 201)
	dup := flagged["duplicate"].(map[string]any)
	if dup["candidate_ids"].([]any)[0] != first["id"] || dup["reasons"].([]any)[0] != "phone +8613800138000" {
		t.Fatalf("duplicate flag: %v", dup)
	}
	if got := ids(t, h.call("GET", "/v1/duplicates", w.admin, nil, 200)); !slices.Equal(got, []string{flagged["id"].(string)}) {
		t.Fatalf("duplicates list: %v", got)
	}
	// Changing the phone so nothing matches clears the flag.
	fixed := h.call("PATCH", "/v1/customers/"+flagged["id"].(string), w.r2, map[string]any{"phones": []any{map[string]any{"number": "13900139000"}}}, 200)
	if fixed["duplicate"] != nil {
		t.Fatalf("flag kept after fix: %v", fixed["duplicate"])
	}
}

func TestCustomerVisibilityPerRoleAndTenant(t *testing.T) {
	w := newWorld(t)
	h := w.h
	c1 := h.newCustomer(w.r1, map[string]any{"name": "Rep one's"})["id"].(string)
	c1b := h.newCustomer(w.r1b, map[string]any{"name": "Rep one b's"})["id"].(string)
	c2 := h.newCustomer(w.r2, map[string]any{"name": "Rep two's"})["id"].(string)
	cA := h.newCustomer(w.admin, map[string]any{"name": "Admin's"})["id"].(string)
	cB := h.newCustomer(w.repB, map[string]any{"name": "Other tenant's"})["id"].(string)
	want := map[string][]string{
		"r1": {c1}, "m1": {c1, c1b}, "m2": {c2}, "admin": {c1, c1b, c2, cA}, "adminB": {cB},
	}
	who := map[string]account{"r1": w.r1, "m1": w.m1, "m2": w.m2, "admin": w.admin, "adminB": w.adminB}
	for name, as := range who {
		if got := ids(t, h.call("GET", "/v1/customers", as, nil, 200)); !slices.Equal(got, sorted(want[name]...)) {
			t.Errorf("%s sees %v, want %v", name, got, sorted(want[name]...))
		}
	}
	h.call("GET", "/v1/customers/"+c2, w.r1, nil, 404)
	h.call("GET", "/v1/customers/"+c1, w.adminB, nil, 404)
	h.call("PATCH", "/v1/customers/"+c2, w.r1, map[string]any{"name": "mine now"}, 404)
	h.call("DELETE", "/v1/customers/"+c1, w.m2, nil, 404)
	r := h.do("POST", "/v1/interactions", w.r1.access, map[string]any{"customer_id": c2, "channel": "phone"})
	h.expect(r, 422, "interaction on someone else's customer")
	h.call("POST", "/v1/interactions", w.m1, map[string]any{"customer_id": c1, "channel": "phone", "content": "manager called"}, 201)
	h.call("GET", "/v1/customers/"+c1+"/interactions", w.r2, nil, 200) // empty: filtered, not an error
	if got := ids(t, h.call("GET", "/v1/customers/"+c1+"/interactions", w.r2, nil, 200)); len(got) != 0 {
		t.Fatalf("r2 sees r1's interactions: %v", got)
	}
}

func TestInteractionNextStepCreatesTaskAndReassignMovesOpenTasks(t *testing.T) {
	w := newWorld(t)
	h := w.h
	cust := h.newCustomer(w.r1, map[string]any{"name": "Visit me", "kind": "company"})["id"].(string)
	due := h.clock.Now().Add(48 * time.Hour).Format(time.RFC3339)
	visit := h.call("POST", "/v1/interactions", w.r1, map[string]any{
		"customer_id": cust, "channel": "visit", "content": "Showed the new range", "duration_seconds": 1800,
		"check_in":  map[string]any{"lat": 23.13, "lng": 113.26, "accuracy": 15, "address": "天河路 1 号"},
		"next_step": map[string]any{"title": "Send the quote", "due_at": due},
	}, 201)
	taskID := visit["next_step"].(map[string]any)["task_id"].(string)
	task := h.call("GET", "/v1/tasks/"+taskID, w.r1, nil, 200)
	if task["title"] != "Send the quote" || task["assignee_id"] != w.r1.id || task["interaction_id"] != visit["id"] || task["status"] != "open" {
		t.Fatalf("task from next step: %v", task)
	}
	done := h.call("POST", "/v1/tasks", w.r1, map[string]any{"customer_id": cust, "title": "Old call", "due_at": due}, 201)
	h.call("PATCH", "/v1/tasks/"+done["id"].(string), w.r1, map[string]any{"status": "done"}, 200)
	c := h.call("GET", "/v1/customers/"+cust, w.r1, nil, 200)
	if c["last_interaction_at"] == nil {
		t.Fatal("interaction did not touch the customer")
	}

	h.call("POST", "/v1/customers/"+cust+"/assign", w.r1, map[string]any{"owner_id": w.r1b.id}, 403)
	h.call("POST", "/v1/customers/"+cust+"/assign", w.m1, map[string]any{"owner_id": w.r2.id}, 422) // not m1's team
	h.call("POST", "/v1/customers/"+cust+"/assign", w.m1, map[string]any{"owner_id": w.r1b.id}, 200)
	if got := h.call("GET", "/v1/tasks/"+taskID, w.r1b, nil, 200)["assignee_id"]; got != w.r1b.id {
		t.Fatalf("open task assignee %v, want the new owner", got)
	}
	if got := h.call("GET", "/v1/tasks/"+done["id"].(string), w.r1b, nil, 200)["assignee_id"]; got != w.r1.id {
		t.Fatalf("done task was reassigned: %v", got)
	}
	h.call("GET", "/v1/customers/"+cust, w.r1, nil, 404)
	if got := ids(t, h.call("GET", "/v1/interactions", w.r1b, nil, 200)); !slices.Equal(got, []string{visit["id"].(string)}) {
		t.Fatalf("new owner's interactions: %v", got)
	}
	bad := h.do("POST", "/v1/interactions", w.r1.access, map[string]any{"customer_id": cust, "channel": "phone",
		"check_in": map[string]any{"lat": 1, "lng": 1}})
	h.expect(bad, 422, "check-in on a phone call")
}

func TestPublicPoolClaimReleaseAndReclaim(t *testing.T) {
	w := newWorld(t)
	h := w.h
	h.call("PATCH", "/v1/settings", w.admin, map[string]any{"pool_reclaim_days": 30}, 200)
	h.call("PATCH", "/v1/settings", w.m1, map[string]any{"pool_reclaim_days": 1}, 403)
	cust := h.newCustomer(w.r1, map[string]any{"name": "Up for grabs"})["id"].(string)
	h.call("POST", "/v1/customers/"+cust+"/release", w.r2, nil, 404)
	h.call("POST", "/v1/customers/"+cust+"/release", w.r1, nil, 200)
	if got := ids(t, h.call("GET", "/v1/customers?pool=true", w.r2, nil, 200)); !slices.Equal(got, []string{cust}) {
		t.Fatalf("pool seen by r2: %v", got)
	}
	h.call("PATCH", "/v1/customers/"+cust, w.r2, map[string]any{"name": "x"}, 403)

	statuses := make(chan int, 2)
	for _, rep := range []account{w.r1b, w.r2} {
		go func() { statuses <- h.do("POST", "/v1/customers/"+cust+"/claim", rep.access, nil).status }()
	}
	got := []int{<-statuses, <-statuses}
	slices.Sort(got)
	if !slices.Equal(got, []int{200, 409}) {
		t.Fatalf("two claims answered %v, want one 200 and one 409", got)
	}
	c := h.call("GET", "/v1/customers/"+cust, w.admin, nil, 200)
	owner := c["owner_id"].(string)

	other := h.newCustomer(w.r1, map[string]any{"name": "Recently visited"})["id"].(string)
	h.clock.Advance(29 * 24 * time.Hour)
	w.r1.access = h.login(w.r1.email, testPassword).access // the old access tokens have expired
	h.call("POST", "/v1/interactions", w.r1, map[string]any{"customer_id": other, "channel": "phone"}, 201)
	h.clock.Advance(2 * 24 * time.Hour)
	w.r1.access, w.admin.access = h.login(w.r1.email, testPassword).access, h.login(w.admin.email, testPassword).access
	if n := h.call("POST", "/v1/pool/reclaim", w.admin, nil, 200)["returned"]; n != 1.0 {
		t.Fatalf("reclaimed %v, want 1", n)
	}
	c = h.call("GET", "/v1/customers/"+cust, w.admin, nil, 200)
	hist := c["owner_history"].([]any)
	lastMove := hist[len(hist)-1].(map[string]any)
	if c["owner_id"] != "" || lastMove["from"] != owner || lastMove["reason"] != "no interaction for 30 days" {
		t.Fatalf("after reclaim: owner %v, history %v", c["owner_id"], hist)
	}
	if h.call("GET", "/v1/customers/"+other, w.r1, nil, 200)["owner_id"] != w.r1.id {
		t.Fatal("a customer with a recent interaction went back to the pool")
	}
}

func TestOrdersPaymentsBalanceAndCreditRating(t *testing.T) {
	w := newWorld(t)
	h := w.h
	cust := h.newCustomer(w.r1, map[string]any{"name": "Buyer"})["id"].(string)
	ordered := h.clock.Now().AddDate(0, 0, -40).Format(time.DateOnly)
	order := h.call("POST", "/v1/orders", w.r1, map[string]any{"customer_id": cust, "ordered_on": ordered, "currency": "CNY",
		"items": []any{map[string]any{"product": "Pump", "sku": "P-100", "quantity": 2, "unit_price": 50000}}}, 201)
	if order["amount"] != 100000.0 || order["due_on"] != ordered {
		t.Fatalf("order amount/due: %v", order)
	}
	credit := func() (map[string]any, []any) {
		c := h.call("GET", "/v1/customers/"+cust, w.m1, nil, 200)
		return c["credit"].(map[string]any), c["balance"].([]any)
	}
	cr, bal := credit()
	if cr["rating"] != "C" || cr["max_days_overdue"] != 40.0 || bal[0].(map[string]any)["amount"] != 100000.0 {
		t.Fatalf("unpaid 40 days: %v %v", cr, bal)
	}
	oid := order["id"].(string)
	h.call("POST", "/v1/payments", w.r1, map[string]any{"order_id": oid, "method": "bank_transfer", "amount": 40000}, 201)
	h.call("POST", "/v1/payments", w.r1, map[string]any{"order_id": oid, "method": "cash", "amount": 60001}, 422)
	_, bal = credit()
	if bal[0].(map[string]any)["amount"] != 60000.0 {
		t.Fatalf("balance after partial payment: %v", bal)
	}
	h.call("POST", "/v1/payments", w.r1, map[string]any{"order_id": oid, "method": "wechat_pay", "amount": 60000}, 201)
	cr, bal = credit()
	if cr["rating"] != "B" || cr["orders_late"] != 1.0 || len(bal) != 0 || len(cr["reasons"].([]any)) == 0 {
		t.Fatalf("paid late in full: %v %v", cr, bal)
	}
	h.call("GET", "/v1/customers/"+cust+"/payments", w.r1, nil, 200)
	if got := len(h.call("GET", "/v1/customers/"+cust+"/payments", w.r1, nil, 200)["data"].([]any)); got != 2 {
		t.Fatalf("%d payments listed", got)
	}
}

func TestTicketAutoAssignmentWorkflowAndSLA(t *testing.T) {
	w := newWorld(t)
	h := w.h
	cust := h.newCustomer(w.r1, map[string]any{"name": "Unhappy"})["id"].(string)
	tk := h.call("POST", "/v1/tickets", w.r1, map[string]any{"customer_id": cust, "type": "complaint", "priority": "urgent", "title": "Pump leaks"}, 201)
	created, _ := time.Parse(time.RFC3339, tk["created_at"].(string))
	sla, _ := time.Parse(time.RFC3339, tk["sla_due_at"].(string))
	if tk["assignee_id"] != w.r1.id || tk["status"] != "assigned" || !sla.Equal(created.Add(4*time.Hour)) {
		t.Fatalf("ticket without support team: %v", tk)
	}
	// With a support team, tickets go round-robin to its members.
	r2b := h.createUser(w.admin, "r2b@a.test", "rep", w.t2)
	h.call("PATCH", "/v1/settings", w.admin, map[string]any{"support_team_id": w.t2, "ticket_sla_hours": map[string]any{"normal": 10}}, 200)
	var assignees []string
	for i := range 4 {
		tk := h.call("POST", "/v1/tickets", w.r1, map[string]any{"customer_id": cust, "type": "question", "title": fmt.Sprint("Q", i)}, 201)
		assignees = append(assignees, tk["assignee_id"].(string))
	}
	if assignees[0] == assignees[1] || assignees[0] != assignees[2] || assignees[1] != assignees[3] ||
		!slices.Contains(assignees, w.r2.id) || !slices.Contains(assignees, r2b.id) {
		t.Fatalf("round robin gave %v", assignees)
	}
	// The assignee sees the ticket though the customer belongs to another team.
	mine := h.call("GET", "/v1/tickets?assignee_id="+w.r2.id, w.r2, nil, 200)["data"].([]any)
	if len(mine) != 2 {
		t.Fatalf("r2 sees %d of their tickets", len(mine))
	}
	id := mine[0].(map[string]any)["id"].(string)
	for _, step := range []string{"in_progress", "resolved", "closed"} {
		h.call("PATCH", "/v1/tickets/"+id, w.r2, map[string]any{"status": step}, 200)
	}
	h.call("PATCH", "/v1/tickets/"+id, w.r2, map[string]any{"status": "resolved"}, 422)
	reopened := h.call("PATCH", "/v1/tickets/"+id, w.r2, map[string]any{"status": "in_progress"}, 200)
	if reopened["closed_at"] != nil || len(reopened["status_history"].([]any)) != 5 {
		t.Fatalf("reopen: %v", reopened)
	}
	commented := h.call("POST", "/v1/tickets/"+id+"/comments", w.r2, map[string]any{"body": "Technician booked"}, 200)
	if c := commented["comments"].([]any); len(c) != 1 || c[0].(map[string]any)["author_id"] != w.r2.id {
		t.Fatalf("comments: %v", c)
	}
	h.call("POST", "/v1/tickets/"+id+"/comments", w.r2, map[string]any{"body": "  "}, 422)
	h.call("GET", "/v1/tickets/"+id, w.m1, nil, 200)  // manages the customer's owner
	h.call("GET", "/v1/tickets/"+id, w.r1b, nil, 404) // a rep sees only their own customers' tickets
	h.call("GET", "/v1/tickets/"+id, w.repB, nil, 404)
}

func TestLoyaltyLedgerBalanceTierAndRaces(t *testing.T) {
	w := newWorld(t)
	h := w.h
	cust := h.newCustomer(w.r1, map[string]any{"name": "Member"})["id"].(string)
	h.call("POST", "/v1/loyalty_entries", w.r1, map[string]any{"customer_id": cust, "kind": "earn", "points": 1500, "reason": "order", "reference": "O-1"}, 201)
	c := h.call("GET", "/v1/customers/"+cust, w.r1, nil, 200)["loyalty"].(map[string]any)
	if c["balance"] != 1500.0 || c["tier"] != "silver" {
		t.Fatalf("loyalty after earn: %v", c)
	}
	h.call("POST", "/v1/loyalty_entries", w.r1, map[string]any{"customer_id": cust, "kind": "redeem", "points": 2000, "reason": "gift"}, 422)
	h.call("POST", "/v1/loyalty_entries", w.r1, map[string]any{"customer_id": cust, "kind": "redeem", "points": -5, "reason": "gift"}, 422)
	// Two redemptions race for 1500 points; only one of 1000 fits.
	statuses := make(chan int, 2)
	for range 2 {
		go func() {
			statuses <- h.do("POST", "/v1/loyalty_entries", w.r1.access, map[string]any{"customer_id": cust, "kind": "redeem", "points": 1000, "reason": "gift"}).status
		}()
	}
	got := []int{<-statuses, <-statuses}
	slices.Sort(got)
	if !slices.Equal(got, []int{201, 422}) {
		t.Fatalf("racing redemptions answered %v", got)
	}
	c = h.call("GET", "/v1/customers/"+cust, w.r1, nil, 200)["loyalty"].(map[string]any)
	if c["balance"] != 500.0 || c["tier"] != "member" {
		t.Fatalf("loyalty after redeem: %v", c)
	}
	entry := h.call("GET", "/v1/customers/"+cust+"/loyalty_entries", w.r1, nil, 200)["data"].([]any)[0].(map[string]any)
	r := h.do("PATCH", "/v1/loyalty_entries/"+entry["id"].(string), w.r1.access, map[string]any{"points": 1})
	if r.status != 405 {
		t.Fatalf("ledger entry edit answered %d", r.status)
	}
}

func TestMergeMovesEveryRecordAndLeavesNoOrphan(t *testing.T) {
	w := newWorld(t)
	h := w.h
	keep := h.newCustomer(w.r1, map[string]any{"name": "Acme", "phones": []any{map[string]any{"number": "13800138000"}}})["id"].(string)
	gone := h.call("POST", "/v1/customers?on_duplicate=flag", w.r1, map[string]any{"name": "ACME Co., Ltd.", "industry": "tools",
		"emails": []any{map[string]any{"address": "info@acme.cn"}}}, 201)["id"].(string)
	due := h.clock.Now().Add(time.Hour).Format(time.RFC3339)
	h.call("POST", "/v1/contacts", w.r1, map[string]any{"customer_id": gone, "name": "Li Lei", "is_primary": true}, 201)
	h.call("POST", "/v1/interactions", w.r1, map[string]any{"customer_id": gone, "channel": "wechat", "next_step": map[string]any{"title": "Call back", "due_at": due}}, 201)
	order := h.call("POST", "/v1/orders", w.r1, map[string]any{"customer_id": gone, "payment_term_days": 30, "items": []any{map[string]any{"product": "Kit", "quantity": 1, "unit_price": 900}}}, 201)
	h.call("POST", "/v1/payments", w.r1, map[string]any{"order_id": order["id"], "method": "cash", "amount": 400}, 201)
	h.call("POST", "/v1/tickets", w.r1, map[string]any{"customer_id": gone, "type": "repair", "title": "Broken"}, 201)
	h.call("POST", "/v1/surveys", w.r1, map[string]any{"customer_id": gone, "csat": 4, "nps": 9, "ratings": map[string]any{"after_sales": 5}}, 201)
	h.call("POST", "/v1/loyalty_entries", w.r1, map[string]any{"customer_id": gone, "kind": "earn", "points": 300, "reason": "signup"}, 201)

	h.call("POST", "/v1/customers/"+keep+"/merge", w.r2, map[string]any{"from": []string{gone}}, 404)
	h.call("POST", "/v1/customers/"+keep+"/merge", w.r1, map[string]any{"from": []string{keep}}, 422)
	merged := h.call("POST", "/v1/customers/"+keep+"/merge", w.r1, map[string]any{"from": []string{gone}}, 200)
	if merged["industry"] != "tools" || len(merged["emails"].([]any)) != 1 || merged["duplicate"] != nil ||
		merged["loyalty"].(map[string]any)["balance"] != 300.0 || merged["balance"].([]any)[0].(map[string]any)["amount"] != 500.0 {
		t.Fatalf("survivor after merge: %v", merged)
	}
	for _, coll := range []string{"contacts", "interactions", "tasks", "orders", "payments", "tickets", "surveys", "loyalty_entries"} {
		if n := len(h.call("GET", "/v1/customers/"+keep+"/"+coll, w.r1, nil, 200)["data"].([]any)); n != 1 {
			t.Errorf("survivor has %d %s, want 1", n, coll)
		}
		if n := len(h.call("GET", "/v1/customers/"+gone+"/"+coll, w.r1, nil, 200)["data"].([]any)); n != 0 {
			t.Errorf("merged-away customer still has %d %s", n, coll)
		}
	}
	old := h.call("GET", "/v1/customers/"+gone, w.r1, nil, 200)
	if old["merged_into"] != keep || old["deleted_at"] == nil {
		t.Fatalf("merged-away customer: %v", old)
	}
	timeline := h.call("GET", "/v1/customers/"+keep+"/timeline", w.r1, nil, 200)["data"].([]any)
	kinds := map[string]bool{}
	for i, item := range timeline {
		m := item.(map[string]any)
		kinds[m["kind"].(string)] = true
		if i > 0 && m["at"].(string) > timeline[i-1].(map[string]any)["at"].(string) {
			t.Fatalf("timeline out of order at %d", i)
		}
	}
	for _, k := range []string{"stage_change", "owner_change", "interactions", "tasks", "orders", "payments", "tickets", "surveys", "loyalty_entries", "contacts"} {
		if !kinds[k] {
			t.Errorf("timeline lacks %s", k)
		}
	}
}

func TestSearchFindsCustomersByNumberNamePhoneAndEmail(t *testing.T) {
	w := newWorld(t)
	h := w.h
	zhang := h.newCustomer(w.r1, map[string]any{"name": "张三丰", "kind": "person", "company_name": "武当贸易有限公司",
		"phones": []any{map[string]any{"number": "13800138000"}}, "emails": []any{map[string]any{"address": "zhang@wudang.cn"}}})
	h.newCustomer(w.r1, map[string]any{"name": "Globex", "phones": []any{map[string]any{"number": "+1 415 555 2671"}}})
	number := zhang["number"].(string)
	for _, q := range []string{number, strings.ToLower(number[:len(number)-2]), "张三", "武当", "138 0013 8000", "+86 138-0013-8000", "ZHANG@WUDANG", "13800138000",
		// Full width, and needles shorter than a trigram (see embedded.findTerms).
		"ＺＨＡＮＧ＠", "ｗｕ", "Ｗ", "张", "三丰"} {
		got := ids(t, h.call("GET", "/v1/customers?q="+url.QueryEscape(q), w.r1, nil, 200))
		if !slices.Equal(got, []string{zhang["id"].(string)}) {
			t.Errorf("q=%s found %v", q, got)
		}
	}
	if got := ids(t, h.call("GET", "/v1/customers?q=nobody", w.r1, nil, 200)); len(got) != 0 {
		t.Errorf("q=nobody found %v", got)
	}
	if got := ids(t, h.call("GET", "/v1/customers?q=globex", w.r2, nil, 200)); len(got) != 0 {
		t.Errorf("search crossed visibility: %v", got)
	}
}

func TestListsPageStablyWithSortAndFilters(t *testing.T) {
	w := newWorld(t)
	h := w.h
	// Nine customers tagged north, their names in pairs, so that paging by
	// name must break ties (by id) to neither skip nor repeat one (the twins
	// are created flagged as possible duplicates); two more
	// tagged south, which the tag filter must leave out. A second between
	// creations orders them by updated_at.
	type made struct{ id, name, stage string }
	var north, everyone []made
	for i := range 11 {
		tag, name, stage := "north", fmt.Sprintf("Customer %d", (8-i)/2), []string{"lead", "prospect"}[i%2]
		if i >= 9 {
			tag, name, stage = "south", fmt.Sprintf("Customer %d", i-9), "lead"
		}
		c := h.call("POST", "/v1/customers?on_duplicate=flag", w.r1, map[string]any{"name": name, "tags": []any{tag}, "stage": stage}, 201)
		m := made{c["id"].(string), name, stage}
		everyone = append(everyone, m)
		if tag == "north" {
			north = append(north, m)
		}
		h.clock.Advance(time.Second)
	}
	idsOf := func(list []made) []string {
		var out []string
		for _, m := range list {
			out = append(out, m.id)
		}
		return out
	}

	var paged []string
	after := ""
	for pages := 0; pages < 5; pages++ {
		page := h.call("GET", "/v1/customers?sort=name&limit=3&tag=north&after="+url.QueryEscape(after), w.r1, nil, 200)
		for _, item := range page["data"].([]any) {
			paged = append(paged, item.(map[string]any)["id"].(string))
		}
		next, _ := page["next_after"].(string)
		if next == "" {
			break
		}
		after = next
	}
	byName := slices.Clone(north)
	slices.SortFunc(byName, func(a, b made) int {
		if c := strings.Compare(a.name, b.name); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
	if want := idsOf(byName); !slices.Equal(paged, want) {
		t.Fatalf("paged by name, tag north: %v\nwant %v", paged, want)
	}

	var prospects []string
	for _, m := range everyone {
		if m.stage == "prospect" {
			prospects = append(prospects, m.id)
		}
	}
	if got := ids(t, h.call("GET", "/v1/customers?stage=prospect", w.r1, nil, 200)); len(prospects) != 4 || !slices.Equal(got, sorted(prospects...)) {
		t.Fatalf("stage=prospect gave %v, want %v", got, sorted(prospects...))
	}

	newestFirst := idsOf(everyone)
	slices.Reverse(newestFirst)
	var got []string
	for _, item := range h.call("GET", "/v1/customers?stage=lead,prospect&sort=-updated_at", w.r1, nil, 200)["data"].([]any) {
		got = append(got, item.(map[string]any)["id"].(string))
	}
	if !slices.Equal(got, newestFirst) {
		t.Fatalf("stage=lead,prospect by -updated_at: %v\nwant %v", got, newestFirst)
	}
}

func TestNationalIDIsSealedAndMaskedExceptForAdmins(t *testing.T) {
	w := newWorld(t)
	h := w.h
	const nid = "11010519491231002X"
	c := h.newCustomer(w.r1, map[string]any{"name": "王五", "kind": "person", "national_id": nid, "birth_date": "1949年12月31日"})
	id := c["id"].(string)
	if c["national_id"] != "110***********002X" || c["birth_date"] != "1949-12-31" {
		t.Fatalf("rep sees %v / %v", c["national_id"], c["birth_date"])
	}
	if got := h.call("GET", "/v1/customers/"+id, w.admin, nil, 200)["national_id"]; got != nid {
		t.Fatalf("admin sees %v", got)
	}
	var raw map[string]any
	if err := h.store.Get(context.Background(), "customers", w.r1.tenantID(t, h), id, &raw); err != nil {
		t.Fatal(err)
	}
	sealed, _ := raw["national_id_sealed"].(string)
	if !strings.HasPrefix(sealed, "v1:") || strings.Contains(fmt.Sprint(raw), nid) {
		t.Fatalf("stored national id not sealed: %v", raw)
	}
	// An edit of another field keeps the number; the audit log shows it masked.
	h.call("PATCH", "/v1/customers/"+id, w.r1, map[string]any{"title": "CEO"}, 200)
	if got := h.call("GET", "/v1/customers/"+id, w.admin, nil, 200)["national_id"]; got != nid {
		t.Fatalf("national id after unrelated edit: %v", got)
	}
	audit := fmt.Sprint(h.call("GET", "/v1/audit?record_id="+id, w.admin, nil, 200))
	if strings.Contains(audit, nid) {
		t.Fatal("audit log holds the national id in clear")
	}
}

func TestCustomFieldsFollowTenantSettings(t *testing.T) {
	w := newWorld(t)
	h := w.h
	h.call("PATCH", "/v1/settings", w.admin, map[string]any{"custom_fields": []any{
		map[string]any{"key": "fleet_size", "label": "Fleet size", "type": "number", "required": true},
		map[string]any{"key": "visit_days", "label": "Visit days", "type": "multi_choice", "options": []string{"mon", "wed", "fri"}},
	}}, 200)
	h.call("PATCH", "/v1/settings", w.admin, map[string]any{"custom_fields": []any{map[string]any{"key": "x", "label": "X", "type": "blob"}}}, 422)
	c := h.newCustomer(w.r1, map[string]any{"name": "Fleet", "custom_fields": map[string]any{"fleet_size": 12, "visit_days": []string{"mon", "fri", "mon"}}})
	if cf := c["custom_fields"].(map[string]any); cf["fleet_size"] != 12.0 || len(cf["visit_days"].([]any)) != 2 {
		t.Fatalf("custom fields: %v", cf)
	}
	for _, bad := range []map[string]any{
		{"visit_days": []string{"sun"}, "fleet_size": 1},
		{"fleet_size": "twelve"},
		{"visit_days": []string{"mon"}},
		{"unknown": 1, "fleet_size": 1},
	} {
		h.call("POST", "/v1/customers", w.r1, map[string]any{"name": "Bad fields", "custom_fields": bad}, 422)
	}
}

func TestOnePrimaryContactPerCustomer(t *testing.T) {
	w := newWorld(t)
	h := w.h
	person := h.newCustomer(w.r1, map[string]any{"name": "Solo", "kind": "person"})["id"].(string)
	h.call("POST", "/v1/contacts", w.r1, map[string]any{"customer_id": person, "name": "Nobody"}, 422)
	company := h.newCustomer(w.r1, map[string]any{"name": "Big Corp"})["id"].(string)
	first := h.call("POST", "/v1/contacts", w.r1, map[string]any{"customer_id": company, "name": "Han Meimei", "is_primary": true,
		"phones": []any{map[string]any{"label": "mobile", "number": "139 0013 9000"}}}, 201)
	second := h.call("POST", "/v1/contacts", w.r1, map[string]any{"customer_id": company, "name": "Li Lei", "is_primary": true}, 201)
	if h.call("GET", "/v1/contacts/"+first["id"].(string), w.r1, nil, 200)["is_primary"] != false || second["is_primary"] != true {
		t.Fatal("two primary contacts")
	}
	if first["phones"].([]any)[0].(map[string]any)["number"] != "+8613900139000" {
		t.Fatalf("contact phone not normalized: %v", first["phones"])
	}
}

func TestPoolIsListedOnlyWhenAskedFor(t *testing.T) {
	w := newWorld(t)
	h := w.h
	mine := h.newCustomer(w.r1, map[string]any{"name": "Mine"})["id"].(string)
	pooled := h.newCustomer(w.r1b, map[string]any{"name": "Pooled"})["id"].(string)
	h.call("POST", "/v1/customers/"+pooled+"/release", w.r1b, nil, 200)
	if got := ids(t, h.call("GET", "/v1/customers", w.r1, nil, 200)); !slices.Equal(got, []string{mine}) {
		t.Fatalf("default list %v", got)
	}
	if got := ids(t, h.call("GET", "/v1/customers?pool=true", w.r1, nil, 200)); !slices.Equal(got, []string{pooled}) {
		t.Fatalf("pool list %v", got)
	}
	h.call("GET", "/v1/customers/"+pooled, w.r2, nil, 200)
	h.call("GET", "/v1/customers/"+pooled, w.repB, nil, 404)
}

func TestOpenAPIMarksServerFieldsReadOnly(t *testing.T) {
	h := newHarness(t)
	doc := h.call("GET", "/v1/openapi.json", account{}, nil, 200)
	customer := doc["components"].(map[string]any)["schemas"].(map[string]any)["Customer"].(map[string]any)["properties"].(map[string]any)
	for _, field := range []string{"number", "version", "credit", "owner_id"} {
		if customer[field].(map[string]any)["readOnly"] != true {
			t.Errorf("%s is not readOnly: %v", field, customer[field])
		}
	}
	if customer["name"].(map[string]any)["readOnly"] != nil {
		t.Error("name is readOnly")
	}
	paths := doc["paths"].(map[string]any)
	for _, p := range []string{"/v1/customers/{id}/merge", "/v1/tickets/{id}/comments", "/v1/customers/{id}/interactions", "/v1/audit"} {
		if paths[p] == nil {
			t.Errorf("%s missing from the OpenAPI document", p)
		}
	}
}

// Every change, whoever makes it (a REST edit, a recomputed credit rating, a
// reassignment), stamps the record and the changed fields with the tenant's next
// sync number, so devices will pull it; fields it did not change keep theirs.
func TestEveryChangeStampsSyncNumbers(t *testing.T) {
	w := newWorld(t)
	h := w.h
	ctx := context.Background()
	stored := func(id string) models.Customer {
		t.Helper()
		var c models.Customer
		if err := h.store.Get(ctx, "customers", w.admin.tenant, id, &c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	id := h.newCustomer(w.r1, map[string]any{"name": "Stamped"})["id"].(string)
	created := stored(id)
	if created.Seq == 0 || created.FieldSeqs["name"] != created.Seq || created.FieldSeqs["number"] != created.Seq {
		t.Fatalf("created: seq %d, fields %v", created.Seq, created.FieldSeqs)
	}
	h.call("PATCH", "/v1/customers/"+id, w.r1, map[string]any{"industry": "retail"}, 200)
	edited := stored(id)
	if edited.Seq <= created.Seq || edited.FieldSeqs["industry"] != edited.Seq || edited.FieldSeqs["name"] != created.Seq {
		t.Fatalf("edited: seq %d, fields %v", edited.Seq, edited.FieldSeqs)
	}
	h.call("POST", "/v1/orders", w.r1, map[string]any{"customer_id": id, "items": []any{map[string]any{"product": "P", "quantity": 1, "unit_price": 10}}}, 201)
	rated := stored(id)
	if rated.Seq <= edited.Seq || rated.FieldSeqs["credit"] != rated.Seq || rated.FieldSeqs["industry"] != edited.Seq {
		t.Fatalf("after an order: seq %d, fields %v", rated.Seq, rated.FieldSeqs)
	}
	h.call("POST", "/v1/customers/"+id+"/assign", w.m1, map[string]any{"owner_id": w.r1b.id}, 200)
	moved := stored(id)
	if moved.Seq <= rated.Seq || moved.FieldSeqs["owner_id"] != moved.Seq {
		t.Fatalf("after reassignment: seq %d, fields %v", moved.Seq, moved.FieldSeqs)
	}
	var orders []models.Order
	if err := h.store.Find(ctx, "orders", models.Query{Tenant: w.admin.tenant, Scope: models.Scope{All: true}}, &orders); err != nil || len(orders) != 1 {
		t.Fatalf("orders %v, %v", orders, err)
	}
	if o := orders[0]; o.FieldSeqs["owner_id"] != o.Seq || o.Seq <= rated.Seq {
		t.Fatalf("the order did not follow its customer: seq %d, fields %v", o.Seq, o.FieldSeqs)
	}
}
