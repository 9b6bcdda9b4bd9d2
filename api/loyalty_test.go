package api_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
)

// pointsRow is a loyalty entry as a phone pushes it: every column, the
// server-written balance_after included (the server ignores it).
func pointsRow(id, customer, kind string, points int) map[string]any {
	return map[string]any{"id": id, "_status": "created", "_changed": "", "customer_id": customer,
		"kind": kind, "points": points, "reason": "visit", "reference": "", "balance_after": 0}
}

// pushPoints pushes loyalty entry rows from a phone and returns the push's
// outcome for the table: accepted ids and rejected ids. Safe in goroutines.
func pushPoints(h *harness, phone *device, rows ...map[string]any) (accepted, rejected []string, err error) {
	created := make([]any, len(rows))
	for i, r := range rows {
		created[i] = r
	}
	r := h.do("POST", "/v1/sync/push?last_pulled_at="+phone.cursor, phone.as.access,
		map[string]any{"changes": map[string]any{"loyalty_entries": map[string]any{"created": created}}})
	if r.status != 200 {
		return nil, nil, fmt.Errorf("push answered %d: %s", r.status, r.body)
	}
	var res struct {
		Accepted map[string][]string `json:"accepted"`
		Rejected map[string][]string `json:"experimentalRejectedIds"`
	}
	if err := json.Unmarshal(r.body, &res); err != nil {
		return nil, nil, err
	}
	return res.Accepted["loyalty_entries"], res.Rejected["loyalty_entries"], nil
}

// ledgerOf returns a customer's points balance and its ledger entries, as
// as sees them.
func ledgerOf(h *harness, as account, customer string) (balance float64, entries []map[string]any) {
	h.t.Helper()
	balance = h.call("GET", "/v1/customers/"+customer, as, nil, 200)["loyalty"].(map[string]any)["balance"].(float64)
	for _, e := range h.call("GET", "/v1/customers/"+customer+"/loyalty_entries?limit=200", as, nil, 200)["data"].([]any) {
		entries = append(entries, e.(map[string]any))
	}
	return balance, entries
}

// checkLedgers fails the test unless each customer's balance is the sum of
// its ledger entries.
func checkLedgers(h *harness, as account, customers ...string) {
	h.t.Helper()
	for _, c := range customers {
		balance, entries := ledgerOf(h, as, c)
		var sum float64
		for _, e := range entries {
			p := e["points"].(float64)
			if e["kind"] == "redeem" || e["kind"] == "expire" {
				p = -p
			}
			sum += p
		}
		if balance != sum {
			h.t.Errorf("customer %s: balance %v, ledger sum %v (%d entries)", c, balance, sum, len(entries))
		}
	}
}

func TestLoyaltyIdenticalConcurrentPushesCountOnce(t *testing.T) {
	w := newWorld(t)
	h := w.h
	cust := h.newCustomer(w.r1, map[string]any{"name": "Member"})["id"].(string)
	phone := h.device(w.r1, "phone-a")
	row := pointsRow("wmpoints00000001", cust, "earn", 100)
	// One push sent four times at once: a phone retrying a push whose
	// response it never got, while the first attempts still run.
	var wg sync.WaitGroup
	outcomes := make([]string, 4)
	for i := range outcomes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			accepted, rejected, err := pushPoints(h, phone, row)
			outcomes[i] = fmt.Sprint(accepted, rejected, err)
		}()
	}
	wg.Wait()
	for i, o := range outcomes {
		if o != "[wmpoints00000001] [] <nil>" {
			t.Errorf("push %d: accepted, rejected, error = %s", i, o)
		}
	}
	balance, entries := ledgerOf(h, w.r1, cust)
	if balance != 100 || len(entries) != 1 {
		t.Fatalf("balance %v with %d entries, want 100 with 1", balance, len(entries))
	}
	checkLedgers(h, w.admin, cust)
}

func TestLoyaltyRetriedPushedCreateIsAcceptedAndChangesNothing(t *testing.T) {
	w := newWorld(t)
	h := w.h
	cust := h.newCustomer(w.r1, map[string]any{"name": "Member"})["id"].(string)
	phone := h.device(w.r1, "phone-a")
	row := pointsRow("wmpoints00000002", cust, "earn", 100)
	if a, r, err := pushPoints(h, phone, row); fmt.Sprint(a, r, err) != "[wmpoints00000002] [] <nil>" {
		t.Fatalf("first push: %v %v %v", a, r, err)
	}
	first := h.call("GET", "/v1/loyalty_entries/wmpoints00000002", w.r1, nil, 200)
	customerBefore := h.call("GET", "/v1/customers/"+cust, w.r1, nil, 200)
	for range 2 {
		if a, r, err := pushPoints(h, phone, row); fmt.Sprint(a, r, err) != "[wmpoints00000002] [] <nil>" {
			t.Fatalf("retried push: accepted %v, rejected %v, %v", a, r, err)
		}
	}
	if again := h.call("GET", "/v1/loyalty_entries/wmpoints00000002", w.r1, nil, 200); fmt.Sprint(again) != fmt.Sprint(first) {
		t.Errorf("entry changed by a retried create:\n%v\n%v", first, again)
	}
	if after := h.call("GET", "/v1/customers/"+cust, w.r1, nil, 200); after["version"] != customerBefore["version"] {
		t.Errorf("customer went from version %v to %v on a retried create", customerBefore["version"], after["version"])
	}
	// The same id with other content is another entry: refused, nothing moves.
	changed := pointsRow("wmpoints00000002", cust, "earn", 500)
	if a, r, err := pushPoints(h, phone, changed); fmt.Sprint(a, r, err) != "[] [wmpoints00000002] <nil>" {
		t.Fatalf("same id, other points: accepted %v, rejected %v, %v", a, r, err)
	}
	balance, entries := ledgerOf(h, w.r1, cust)
	if balance != 100 || len(entries) != 1 || entries[0]["points"] != 100.0 {
		t.Fatalf("balance %v, entries %v", balance, entries)
	}
	checkLedgers(h, w.admin, cust)
}

func TestLoyaltyEntryIDTakenElsewhereIsRejectedAndMovesNoBalance(t *testing.T) {
	w := newWorld(t)
	h := w.h
	mine := h.newCustomer(w.r1, map[string]any{"name": "Mine"})["id"].(string)
	other := h.newCustomer(w.r1, map[string]any{"name": "Other"})["id"].(string)
	theirs := h.newCustomer(w.repB, map[string]any{"name": "Theirs"})["id"].(string)
	phoneA := h.device(w.r1, "phone-a")
	phoneB := h.device(w.repB, "phone-b")
	h.call("POST", "/v1/loyalty_entries", w.r1, map[string]any{"customer_id": other, "kind": "earn", "points": 500, "reason": "order"}, 201)
	h.call("POST", "/v1/loyalty_entries", w.repB, map[string]any{"customer_id": theirs, "kind": "earn", "points": 500, "reason": "order"}, 201)
	if a, r, err := pushPoints(h, phoneA, pointsRow("wmpoints00000003", mine, "earn", 100), pointsRow("wmpoints00000004", other, "redeem", 300)); fmt.Sprint(a, r, err) != "[wmpoints00000003 wmpoints00000004] [] <nil>" {
		t.Fatalf("tenant A's pushes: %v %v %v", a, r, err)
	}
	cases := []struct {
		name  string
		phone *device
		row   map[string]any
	}{
		{"another tenant's id, earning", phoneB, pointsRow("wmpoints00000003", theirs, "earn", 1000)},
		{"another tenant's id, redeeming", phoneB, pointsRow("wmpoints00000004", theirs, "redeem", 300)},
		{"another customer's id, earning", phoneA, pointsRow("wmpoints00000003", other, "earn", 100)},
		{"another customer's id, redeeming", phoneA, pointsRow("wmpoints00000004", mine, "redeem", 50)},
	}
	for _, c := range cases {
		if a, r, err := pushPoints(h, c.phone, c.row); fmt.Sprint(a, r, err) != "[] ["+c.row["id"].(string)+"] <nil>" {
			t.Errorf("%s: accepted %v, rejected %v, %v", c.name, a, r, err)
		}
	}
	for _, c := range []struct {
		as       account
		customer string
		want     float64
	}{{w.r1, mine, 100}, {w.r1, other, 200}, {w.repB, theirs, 500}} {
		if balance, _ := ledgerOf(h, c.as, c.customer); balance != c.want {
			t.Errorf("customer %s: balance %v, want %v", c.customer, balance, c.want)
		}
	}
	// Nothing stays held by the refused redemptions: every point can go.
	h.call("POST", "/v1/loyalty_entries", w.repB, map[string]any{"customer_id": theirs, "kind": "redeem", "points": 500, "reason": "gift"}, 201)
	h.call("POST", "/v1/loyalty_entries", w.r1, map[string]any{"customer_id": mine, "kind": "redeem", "points": 100, "reason": "gift"}, 201)
	checkLedgers(h, w.admin, mine, other)
	checkLedgers(h, w.adminB, theirs)
}

func TestLoyaltyRacingRetriedRedemptionsTakeTheLastPointsOnce(t *testing.T) {
	w := newWorld(t)
	h := w.h
	cust := h.newCustomer(w.r1, map[string]any{"name": "Member"})["id"].(string)
	h.call("POST", "/v1/loyalty_entries", w.r1, map[string]any{"customer_id": cust, "kind": "earn", "points": 100, "reason": "order"}, 201)
	phoneA := h.device(w.r1, "phone-a")
	phoneB := h.device(w.r1, "phone-b")
	// Two phones redeem the last 100 points, each sending its push twice at
	// once (a retry after a lost response).
	type outcome struct{ accepted, rejected []string }
	var wg sync.WaitGroup
	results := make([]outcome, 4)
	for i := range results {
		phone, id := phoneA, "wmredeem0000000a"
		if i%2 == 1 {
			phone, id = phoneB, "wmredeem0000000b"
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, r, err := pushPoints(h, phone, pointsRow(id, cust, "redeem", 100))
			if err != nil {
				t.Error(err)
			}
			results[i] = outcome{a, r}
		}()
	}
	wg.Wait()
	byID := map[string][]string{}
	for _, o := range results {
		for _, id := range o.accepted {
			byID[id] = append(byID[id], "accepted")
		}
		for _, id := range o.rejected {
			byID[id] = append(byID[id], "rejected")
		}
	}
	a, b := fmt.Sprint(byID["wmredeem0000000a"]), fmt.Sprint(byID["wmredeem0000000b"])
	if !slices.Contains([]string{a + b, b + a}, "[accepted accepted][rejected rejected]") {
		t.Fatalf("outcomes per redemption: a %s, b %s", a, b)
	}
	balance, entries := ledgerOf(h, w.r1, cust)
	if balance != 0 || len(entries) != 2 {
		t.Fatalf("balance %v with %d entries, want 0 with 2", balance, len(entries))
	}
	checkLedgers(h, w.admin, cust)
}
