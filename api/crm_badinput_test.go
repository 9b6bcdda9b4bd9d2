package api_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/fieldcrm/fieldcrm/internal/store"
	"github.com/fieldcrm/fieldcrm/models"
)

// TestCRMBadInputGets4xxAndWritesNothing sends each CRM route the mistakes
// clients make and checks the status, the field named in the problem document,
// and that no record, audit entry, number claim or setting of the tenant changed.
func TestCRMBadInputGets4xxAndWritesNothing(t *testing.T) {
	w := newWorld(t)
	h := w.h
	ctx := context.Background()
	cust := h.newCustomer(w.r1, map[string]any{"name": "Acme", "phones": []any{map[string]any{"number": "13800138000"}}})["id"].(string)
	person := h.newCustomer(w.r1, map[string]any{"name": "Solo", "kind": "person"})["id"].(string)
	other := h.newCustomer(w.r2, map[string]any{"name": "Not yours"})["id"].(string)
	otherOrder := h.call("POST", "/v1/orders", w.r2, map[string]any{"customer_id": other, "items": []any{map[string]any{"product": "X", "quantity": 1, "unit_price": 10}}}, 201)["id"].(string)
	order := h.call("POST", "/v1/orders", w.r1, map[string]any{"customer_id": cust, "items": []any{map[string]any{"product": "Pump", "quantity": 1, "unit_price": 1000}}}, 201)["id"].(string)
	ticket := h.call("POST", "/v1/tickets", w.r1, map[string]any{"customer_id": cust, "type": "question", "title": "How?"}, 201)["id"].(string)
	h.call("POST", "/v1/loyalty_entries", w.r1, map[string]any{"customer_id": cust, "kind": "earn", "points": 10, "reason": "welcome"}, 201)
	entry := h.call("GET", "/v1/loyalty_entries", w.r1, nil, 200)["data"].([]any)[0].(map[string]any)["id"].(string)
	future := h.clock.Now().Add(72 * time.Hour).Format(time.RFC3339)

	snapshot := func() string {
		var b strings.Builder
		colls := append([]string{store.Customers}, store.ChildCollections...)
		for _, coll := range colls {
			var docs []map[string]any
			if err := h.store.Find(ctx, coll, models.Query{Tenant: w.admin.tenant, Scope: models.Scope{All: true}, WithDeleted: true}, &docs); err != nil {
				t.Fatal(err)
			}
			raw, _ := json.Marshal(docs)
			b.Write(raw)
		}
		audit, err := h.store.Audit(ctx, w.admin.tenant, "", "", nil, 10_000)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := json.Marshal(audit)
		b.Write(raw)
		n, _ := h.store.HighestCustomerNumber(ctx, w.admin.tenant)
		tenant, _ := h.store.Tenant(ctx, w.admin.tenant)
		raw, _ = json.Marshal([]any{n, tenant})
		b.Write(raw)
		return b.String()
	}

	r1, m1, admin := w.r1, w.m1, w.admin
	cases := []badInput{
		{"customer unknown field", "POST", "/v1/customers", `{"name":"A","nickname":"a"}`, r1, 422, "nickname", nil},
		{"customer server field", "POST", "/v1/customers", `{"name":"A","number":"C1"}`, r1, 422, "number", nil},
		{"customer version", "POST", "/v1/customers", `{"name":"A","version":3}`, r1, 422, "version", nil},
		{"customer name number", "POST", "/v1/customers", `{"name":5}`, r1, 422, "name", nil},
		{"customer no name", "POST", "/v1/customers", `{"name":"   "}`, r1, 422, "name", nil},
		{"customer long name", "POST", "/v1/customers", `{"name":"` + strings.Repeat("名", 201) + `"}`, r1, 422, "name", nil},
		{"customer bad phone", "POST", "/v1/customers", `{"name":"A","phones":[{"number":"12"}]}`, r1, 422, "phones[0].number", nil},
		{"customer bad email", "POST", "/v1/customers", `{"name":"A","emails":[{"address":"a@"}]}`, r1, 422, "emails[0].address", nil},
		{"customer bad stage", "POST", "/v1/customers", `{"name":"A","stage":"won"}`, r1, 422, "stage", nil},
		{"customer bad kind", "POST", "/v1/customers", `{"name":"A","kind":"robot"}`, r1, 422, "kind", nil},
		{"customer bad source", "POST", "/v1/customers", `{"name":"A","source":"tv"}`, r1, 422, "source", nil},
		{"customer tags not a list", "POST", "/v1/customers", `{"name":"A","tags":"vip"}`, r1, 422, "tags", nil},
		{"customer bad birth date", "POST", "/v1/customers", `{"name":"A","kind":"person","birth_date":"31/12/1990"}`, r1, 422, "birth_date", nil},
		{"company with national id", "POST", "/v1/customers", `{"name":"A","national_id":"123456789"}`, r1, 422, "kind", nil},
		{"customer unknown custom field", "POST", "/v1/customers", `{"name":"A","custom_fields":{"x":1}}`, r1, 422, "custom_fields.x", nil},
		{"customer duplicate", "POST", "/v1/customers", `{"name":"B","phones":[{"number":"138 0013 8000"}]}`, r1, 409, "", nil},
		{"customer bad on_duplicate", "POST", "/v1/customers?on_duplicate=maybe", `{"name":"B"}`, r1, 422, "on_duplicate", nil},
		{"customer text/plain", "POST", "/v1/customers", `{"name":"B"}`, r1, 415, "", []string{"Content-Type", "text/plain"}},
		{"customer empty body", "POST", "/v1/customers", ``, r1, 400, "", nil},
		{"patch bad If-Match", "PATCH", "/v1/customers/" + cust, `{"name":"B"}`, r1, 400, "", []string{"If-Match", "abc"}},
		{"patch stale If-Match", "PATCH", "/v1/customers/" + cust, `{"name":"B"}`, r1, 412, "", []string{"If-Match", `"9"`}},
		{"patch server field", "PATCH", "/v1/customers/" + cust, `{"owner_id":"` + w.r2.id + `"}`, r1, 422, "owner_id", nil},
		{"patch good and bad field", "PATCH", "/v1/customers/" + cust, `{"name":"Renamed","stage":"won"}`, r1, 422, "stage", nil},
		{"patch someone else's", "PATCH", "/v1/customers/" + other, `{"name":"Mine"}`, r1, 404, "", nil},
		{"delete someone else's", "DELETE", "/v1/customers/" + other, ``, r1, 404, "", nil},
		{"interaction no customer", "POST", "/v1/interactions", `{"channel":"phone"}`, r1, 422, "customer_id", nil},
		{"interaction other's customer", "POST", "/v1/interactions", `{"customer_id":"` + other + `","channel":"phone"}`, r1, 422, "customer_id", nil},
		{"interaction bad channel", "POST", "/v1/interactions", `{"customer_id":"` + cust + `","channel":"fax"}`, r1, 422, "channel", nil},
		{"interaction negative duration", "POST", "/v1/interactions", `{"customer_id":"` + cust + `","channel":"phone","duration_seconds":-1}`, r1, 422, "duration_seconds", nil},
		{"interaction in the future", "POST", "/v1/interactions", `{"customer_id":"` + cust + `","channel":"phone","occurred_at":"` + future + `"}`, r1, 422, "occurred_at", nil},
		{"interaction bad time", "POST", "/v1/interactions", `{"customer_id":"` + cust + `","channel":"phone","occurred_at":"yesterday"}`, r1, 422, "occurred_at", nil},
		{"interaction bad latitude", "POST", "/v1/interactions", `{"customer_id":"` + cust + `","channel":"visit","check_in":{"lat":100,"lng":0}}`, r1, 422, "check_in.lat", nil},
		{"interaction next step without due", "POST", "/v1/interactions", `{"customer_id":"` + cust + `","channel":"visit","next_step":{"title":"Call"}}`, r1, 422, "next_step.due_at", nil},
		{"task without due", "POST", "/v1/tasks", `{"customer_id":"` + cust + `","title":"Call"}`, r1, 422, "due_at", nil},
		{"task bad status", "POST", "/v1/tasks", `{"customer_id":"` + cust + `","title":"Call","due_at":"` + future + `","status":"later"}`, r1, 422, "status", nil},
		{"task for another rep", "POST", "/v1/tasks", `{"customer_id":"` + cust + `","title":"Call","due_at":"` + future + `","assignee_id":"` + w.r2.id + `"}`, r1, 422, "assignee_id", nil},
		{"task negative reminder", "POST", "/v1/tasks", `{"customer_id":"` + cust + `","title":"Call","due_at":"` + future + `","remind_minutes_before":-5}`, r1, 422, "remind_minutes_before", nil},
		{"order no items", "POST", "/v1/orders", `{"customer_id":"` + cust + `","items":[]}`, r1, 422, "items", nil},
		{"order zero quantity", "POST", "/v1/orders", `{"customer_id":"` + cust + `","items":[{"product":"P","quantity":0,"unit_price":1}]}`, r1, 422, "items[0].quantity", nil},
		{"order negative price", "POST", "/v1/orders", `{"customer_id":"` + cust + `","items":[{"product":"P","quantity":1,"unit_price":-1}]}`, r1, 422, "items[0].unit_price", nil},
		{"order bad currency", "POST", "/v1/orders", `{"customer_id":"` + cust + `","currency":"yuan","items":[{"product":"P","quantity":1,"unit_price":1}]}`, r1, 422, "currency", nil},
		{"order bad date", "POST", "/v1/orders", `{"customer_id":"` + cust + `","ordered_on":"2026-13-01","items":[{"product":"P","quantity":1,"unit_price":1}]}`, r1, 422, "ordered_on", nil},
		{"order amount written", "POST", "/v1/orders", `{"customer_id":"` + cust + `","amount":5,"items":[{"product":"P","quantity":1,"unit_price":1}]}`, r1, 422, "amount", nil},
		{"payment no order", "POST", "/v1/payments", `{"method":"cash","amount":1}`, r1, 422, "order_id", nil},
		{"payment other's order", "POST", "/v1/payments", `{"order_id":"` + otherOrder + `","method":"cash","amount":1}`, r1, 422, "order_id", nil},
		{"payment bad method", "POST", "/v1/payments", `{"order_id":"` + order + `","method":"gold","amount":1}`, r1, 422, "method", nil},
		{"payment zero", "POST", "/v1/payments", `{"order_id":"` + order + `","method":"cash","amount":0}`, r1, 422, "amount", nil},
		{"payment over the debt", "POST", "/v1/payments", `{"order_id":"` + order + `","method":"cash","amount":1001}`, r1, 422, "amount", nil},
		{"payment customer written", "POST", "/v1/payments", `{"order_id":"` + order + `","customer_id":"` + cust + `","method":"cash","amount":1}`, r1, 422, "customer_id", nil},
		{"ticket bad type", "POST", "/v1/tickets", `{"customer_id":"` + cust + `","type":"rant","title":"T"}`, r1, 422, "type", nil},
		{"ticket bad priority", "POST", "/v1/tickets", `{"customer_id":"` + cust + `","type":"question","priority":"asap","title":"T"}`, r1, 422, "priority", nil},
		{"ticket unknown assignee", "POST", "/v1/tickets", `{"customer_id":"` + cust + `","type":"question","title":"T","assignee_id":"nobody"}`, r1, 422, "assignee_id", nil},
		{"ticket SLA written", "POST", "/v1/tickets", `{"customer_id":"` + cust + `","type":"question","title":"T","sla_due_at":"` + future + `"}`, r1, 422, "sla_due_at", nil},
		{"ticket back to new", "PATCH", "/v1/tickets/" + ticket, `{"status":"new"}`, r1, 422, "status", nil},
		{"comment empty", "POST", "/v1/tickets/" + ticket + "/comments", `{"body":" "}`, r1, 422, "body", nil},
		{"survey no score", "POST", "/v1/surveys", `{"customer_id":"` + cust + `","comment":"ok"}`, r1, 422, "csat", nil},
		{"survey csat 6", "POST", "/v1/surveys", `{"customer_id":"` + cust + `","csat":6}`, r1, 422, "csat", nil},
		{"survey nps 11", "POST", "/v1/surveys", `{"customer_id":"` + cust + `","nps":11}`, r1, 422, "nps", nil},
		{"survey topic 0", "POST", "/v1/surveys", `{"customer_id":"` + cust + `","csat":3,"ratings":{"after_sales":0}}`, r1, 422, "ratings.after_sales", nil},
		{"points bad kind", "POST", "/v1/loyalty_entries", `{"customer_id":"` + cust + `","kind":"gift","points":1,"reason":"r"}`, r1, 422, "kind", nil},
		{"points zero", "POST", "/v1/loyalty_entries", `{"customer_id":"` + cust + `","kind":"earn","points":0,"reason":"r"}`, r1, 422, "points", nil},
		{"points no reason", "POST", "/v1/loyalty_entries", `{"customer_id":"` + cust + `","kind":"earn","points":1}`, r1, 422, "reason", nil},
		{"points overdraw", "POST", "/v1/loyalty_entries", `{"customer_id":"` + cust + `","kind":"redeem","points":11,"reason":"r"}`, r1, 422, "points", nil},
		{"points edit", "PATCH", "/v1/loyalty_entries/" + entry, `{"points":5}`, r1, 405, "", nil},
		{"points delete", "DELETE", "/v1/loyalty_entries/" + entry, ``, r1, 405, "", nil},
		{"contact on a person", "POST", "/v1/contacts", `{"customer_id":"` + person + `","name":"C"}`, r1, 422, "customer_id", nil},
		{"contact bad phone", "POST", "/v1/contacts", `{"customer_id":"` + cust + `","name":"C","phones":[{"number":"x"}]}`, r1, 422, "phones[0].number", nil},
		{"list unknown filter", "GET", "/v1/customers?colour=red", ``, r1, 422, "colour", nil},
		{"list bad sort", "GET", "/v1/customers?sort=colour", ``, r1, 422, "sort", nil},
		{"list bad cursor", "GET", "/v1/customers?after=!!", ``, r1, 422, "after", nil},
		{"list bad enum filter", "GET", "/v1/interactions?channel=fax", ``, r1, 422, "channel", nil},
		{"list bad time filter", "GET", "/v1/interactions?from=monday", ``, r1, 422, "from", nil},
		{"list bad limit", "GET", "/v1/tasks?limit=0", ``, r1, 422, "limit", nil},
		{"merge nothing", "POST", "/v1/customers/" + cust + "/merge", `{"from":[]}`, r1, 422, "from", nil},
		{"merge unknown", "POST", "/v1/customers/" + cust + "/merge", `{"from":["nope"]}`, r1, 422, "from[0]", nil},
		{"merge wrong type", "POST", "/v1/customers/" + cust + "/merge", `{"from":"nope"}`, r1, 422, "from", nil},
		{"assign unknown owner", "POST", "/v1/customers/" + cust + "/assign", `{"owner_id":"nobody"}`, m1, 422, "owner_id", nil},
		{"assign as rep", "POST", "/v1/customers/" + cust + "/assign", `{"owner_id":"` + w.r1b.id + `"}`, r1, 403, "", nil},
		{"claim owned", "POST", "/v1/customers/" + cust + "/claim", ``, w.r1b, 409, "", nil},
		{"settings bad region", "PATCH", "/v1/settings", `{"phone_region":"XX"}`, admin, 422, "phone_region", nil},
		{"settings unknown field", "PATCH", "/v1/settings", `{"colour":"red"}`, admin, 422, "colour", nil},
		{"settings unknown team", "PATCH", "/v1/settings", `{"support_team_id":"nope"}`, admin, 422, "support_team_id", nil},
		{"settings as manager", "PATCH", "/v1/settings", `{"currency":"USD"}`, m1, 403, "", nil},
		{"audit as rep", "GET", "/v1/audit", ``, r1, 403, "", nil},
		{"audit bad before", "GET", "/v1/audit?before=then", ``, admin, 422, "before", nil},
		{"reclaim as manager", "POST", "/v1/pool/reclaim", ``, m1, 403, "", nil},
	}
	runBadInputs(t, h, snapshot, cases)
}
