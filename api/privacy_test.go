package api_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// personalValues are what the test customer's records say about the person;
// after an erasure none may be found anywhere the tenant can read.
var personalValues = []string{
	"王小明", "13800138000", "xiaoming@example.cn", "110101199003074514", "朝阳路 88 号",
	"Wang Old", "13900139000", "李秘书", "13700137000", "likes tea in the afternoon", "天河路 1 号",
	"Call Wang about the pump", "leaks at the kitchen tap", "cannot reach Wang", "slow delivery for Wang",
	"birthday gift for Wang", "deliver to Wang's home", "Wang prefers mornings",
}

// seedPerson gives a rep's customer records of every kind, a merged duplicate
// and a sync conflict, and returns the customer's id.
func seedPerson(t *testing.T, w *world) string {
	h := w.h
	id := h.newCustomer(w.r1, map[string]any{
		"name": "王小明", "kind": "person", "phones": []any{map[string]any{"label": "mobile", "number": "138 0013 8000"}},
		"emails": []any{map[string]any{"label": "work", "address": "xiaoming@example.cn"}}, "national_id": "110101199003074514",
		"address": map[string]any{"city": "北京", "street": "朝阳路 88 号"}, "product_needs": "Wang prefers mornings", "region": "North",
	})["id"].(string)
	old := h.call("POST", "/v1/customers?on_duplicate=flag", w.r1, map[string]any{
		"name": "Wang Old", "kind": "company", "phones": []any{map[string]any{"label": "mobile", "number": "139 0013 9000"}},
	}, 201)["id"].(string)
	h.call("POST", "/v1/contacts", w.r1, map[string]any{"customer_id": old, "name": "李秘书",
		"phones": []any{map[string]any{"label": "mobile", "number": "137 0013 7000"}}}, 201)
	h.call("POST", "/v1/customers/"+id+"/merge", w.r1, map[string]any{"from": []string{old}}, 200)

	due := h.clock.Now().Add(48 * time.Hour).Format(time.RFC3339)
	h.call("POST", "/v1/interactions", w.r1, map[string]any{"customer_id": id, "channel": "visit", "content": "likes tea in the afternoon",
		"check_in": map[string]any{"lat": 23.13, "lng": 113.26, "accuracy": 15, "address": "天河路 1 号"}}, 201)
	h.call("POST", "/v1/tasks", w.r1, map[string]any{"customer_id": id, "title": "Call Wang about the pump", "due_at": due}, 201)
	order := h.call("POST", "/v1/orders", w.r1, map[string]any{"customer_id": id, "currency": "CNY", "note": "deliver to Wang's home",
		"items": []any{map[string]any{"product": "Pump", "quantity": 2, "unit_price": 50000}}}, 201)["id"].(string)
	h.call("POST", "/v1/payments", w.r1, map[string]any{"order_id": order, "method": "bank_transfer", "amount": 40000}, 201)
	ticket := h.call("POST", "/v1/tickets", w.r1, map[string]any{"customer_id": id, "type": "repair", "title": "cannot reach Wang",
		"description": "leaks at the kitchen tap"}, 201)["id"].(string)
	h.call("POST", "/v1/tickets/"+ticket+"/comments", w.r1, map[string]any{"body": "leaks at the kitchen tap"}, 200)
	h.call("POST", "/v1/surveys", w.r1, map[string]any{"customer_id": id, "csat": 2, "nps": 3, "comment": "slow delivery for Wang"}, 201)
	h.call("POST", "/v1/loyalty_entries", w.r1, map[string]any{"customer_id": id, "kind": "earn", "points": 120, "reason": "birthday gift for Wang"}, 201)

	// Two phones change the same column: a conflict holding both values.
	a := h.device(w.r1, "phone-a")
	b := h.device(w.r1, "phone-b")
	a.push(map[string]any{"customers": map[string]any{"updated": []any{updated(id, map[string]any{"title": "likes tea in the afternoon"})}}}, 200)
	res := b.push(map[string]any{"customers": map[string]any{"updated": []any{updated(id, map[string]any{"title": "Wang prefers mornings"})}}}, 200)
	if fmt.Sprint(res["conflicted"].(map[string]any)["customers"]) != "["+id+"]" {
		t.Fatalf("no conflict to erase: %v", res)
	}
	return id
}

func TestAccessRequestReturnsEverythingAboutTheCustomer(t *testing.T) {
	w := newWorld(t)
	h := w.h
	id := seedPerson(t, w)

	for _, who := range []account{w.r1, w.m1} {
		h.call("GET", "/v1/customers/"+id+"/personal-data", who, nil, 403)
	}
	h.call("GET", "/v1/customers/"+id+"/personal-data", w.adminB, nil, 404)
	h.call("GET", "/v1/customers/nosuchcustomer1/personal-data", w.admin, nil, 404)

	r := h.do("GET", "/v1/customers/"+id+"/personal-data", w.admin.access, nil)
	h.expect(r, 200, "access request")
	doc := string(r.body)
	for _, v := range personalValues {
		if !strings.Contains(doc, v) {
			t.Errorf("the access request lacks %q", v)
		}
	}
	data := r.json(t)
	counts := map[string]int{}
	for _, k := range []string{"merged_from", "contacts", "interactions", "tasks", "orders", "payments", "tickets", "surveys", "loyalty_entries", "conflicts", "history"} {
		counts[k] = len(data[k].([]any))
	}
	want := map[string]int{"merged_from": 1, "contacts": 1, "interactions": 1, "tasks": 1, "orders": 1, "payments": 1, "tickets": 1, "surveys": 1, "loyalty_entries": 1, "conflicts": 1}
	for k, n := range want {
		if counts[k] != n {
			t.Errorf("%s: %d records, want %d (%v)", k, counts[k], n, counts)
		}
	}
	if counts["history"] < 12 || data["customer"].(map[string]any)["national_id"] != "110101199003074514" {
		t.Errorf("history %d entries; national id %v", counts["history"], data["customer"].(map[string]any)["national_id"])
	}
}

func TestErasureRemovesPersonalDataEverywhereAndKeepsTheFigures(t *testing.T) {
	w := newWorld(t)
	h := w.h
	id := seedPerson(t, w)
	phone := h.device(w.r1, "phone-c")
	before := h.call("GET", "/v1/customers/"+id, w.admin, nil, 200)
	// A manager or the owner may not erase; another tenant's admin sees nothing.
	h.call("POST", "/v1/customers/"+id+"/erase", w.r1, nil, 403)
	h.call("POST", "/v1/customers/"+id+"/erase", w.m1, nil, 403)
	h.call("POST", "/v1/customers/"+id+"/erase", w.adminB, nil, 404)
	if got := h.call("GET", "/v1/customers/"+id, w.admin, nil, 200); got["version"] != before["version"] {
		t.Fatalf("a refused erasure wrote: version %v → %v", before["version"], got["version"])
	}

	res := h.call("POST", "/v1/customers/"+id+"/erase", w.admin, nil, 200)
	records := res["records"].(map[string]any)
	for coll, n := range map[string]float64{"customers": 2, "contacts": 1, "interactions": 1, "tasks": 1, "orders": 1, "tickets": 1, "surveys": 1, "loyalty_entries": 1, "conflicts": 1} {
		if records[coll] != n {
			t.Errorf("erased %v %s, want %v (%v)", records[coll], coll, n, records)
		}
	}
	if res["history_entries"].(float64) < 10 {
		t.Errorf("history entries scrubbed: %v", res["history_entries"])
	}

	// Nothing the tenant can read still holds any of it: the records, the
	// access request, the audit log, the conflicts, a phone's pull.
	after := h.call("GET", "/v1/customers/"+id, w.admin, nil, 200)
	places := map[string]any{
		"customer":      after,
		"access":        h.call("GET", "/v1/customers/"+id+"/personal-data", w.admin, nil, 200),
		"audit":         h.call("GET", "/v1/audit?limit=200", w.admin, nil, 200),
		"conflicts":     h.call("GET", "/v1/conflicts", w.r1, nil, 200),
		"timeline":      h.call("GET", "/v1/customers/"+id+"/timeline", w.r1, nil, 200),
		"notifications": h.call("GET", "/v1/notifications", w.r1, nil, 200),
	}
	kinds, pulled := phone.pull()
	places["pull"] = pulled
	for where, v := range places {
		raw, _ := json.Marshal(v)
		for _, p := range personalValues {
			if strings.Contains(string(raw), p) {
				t.Errorf("%s still holds %q", where, p)
			}
		}
	}
	if !strings.Contains(fmt.Sprint(kinds["customers/updated"]), id) {
		t.Errorf("the phone did not receive the erased customer: %v", kinds)
	}
	if got := pulled[id]; got["name"] != "[erased]" || got["phones"] != "[]" || got["national_id"] != "" {
		t.Errorf("the phone's copy after erasure: %v", got)
	}
	// What reports count stays.
	for _, k := range []string{"number", "kind", "region", "stage", "balance", "credit", "loyalty", "owner_id"} {
		if fmt.Sprint(after[k]) != fmt.Sprint(before[k]) {
			t.Errorf("%s changed: %v → %v", k, before[k], after[k])
		}
	}
	orders := h.call("GET", "/v1/orders?customer_id="+id, w.admin, nil, 200)["data"].([]any)
	if o := orders[0].(map[string]any); o["amount"].(float64) != 100000 || o["note"] != "" {
		t.Errorf("order after erasure: %v", o)
	}
	surveys := h.call("GET", "/v1/surveys?customer_id="+id, w.admin, nil, 200)["data"].([]any)
	if s := surveys[0].(map[string]any); s["csat"].(float64) != 2 || s["comment"] != "" {
		t.Errorf("survey after erasure: %v", s)
	}
	conflicts := h.call("GET", "/v1/conflicts", w.r1, nil, 200)["data"].([]any)
	c := conflicts[0].(map[string]any)
	if c["resolution"] == "" {
		t.Errorf("an erased conflict stays revertible: %v", c)
	}
	h.call("POST", "/v1/conflicts/"+c["id"].(string)+"/resolve", w.r1, map[string]any{"action": "revert"}, 409)

	// The erasure is in the audit log, by whom; a second one changes nothing.
	audit := h.call("GET", "/v1/audit?limit=200", w.admin, nil, 200)["data"].([]any)
	erasedBy := ""
	for _, e := range audit {
		if e := e.(map[string]any); e["action"] == "erase" && e["record_id"] == id {
			erasedBy = e["actor_id"].(string)
		}
	}
	if erasedBy != w.admin.id {
		t.Errorf("erase entry by %q, want the admin", erasedBy)
	}
	again := h.call("POST", "/v1/customers/"+id+"/erase", w.admin, nil, 200)
	if again["history_entries"].(float64) != 0 {
		t.Errorf("a repeated erasure rewrote %v history entries", again["history_entries"])
	}
	if got := h.call("GET", "/v1/customers/"+id, w.admin, nil, 200); got["version"] != after["version"] {
		t.Errorf("a repeated erasure wrote a new version")
	}
}
