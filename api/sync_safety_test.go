package api_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/fieldcrm/fieldcrm/models"
)

// The conflicts table is the server's: a device that pushes a forged conflict
// (naming another team's customer, a server-only column) has it rejected
// alone, the valid customer in the same push is accepted, and nothing the
// forged row names changes. Found by an attacker: a manager forged a
// conflict on owner_id, reverted it, and the customer became theirs.
func TestConflictsAreReadOnlyToDevices(t *testing.T) {
	w := newWorld(t)
	h := w.h
	theirs := h.newCustomer(w.r2, map[string]any{"name": "South Co"})["id"].(string)
	m1 := h.device(w.m1, "m1-phone")
	forged := map[string]any{"id": "forgedconflict01", "table": "customers", "record_id": theirs, "column": "owner_id",
		"server_value": `"` + w.m1.id + `"`, "device_value": `"x"`, "kept": "device", "policy": "last_writer_wins"}
	res := m1.push(map[string]any{
		"conflicts": map[string]any{"created": []any{forged}, "updated": []any{forged}, "deleted": []any{"someconflict0001"}},
		"customers": map[string]any{"created": []any{map[string]any{"id": "besideforged0001", "name": "Beside Co"}}},
	}, 200)
	rejected := res["experimentalRejectedIds"].(map[string]any)
	if fmt.Sprint(rejected["conflicts"]) != "[forgedconflict01 forgedconflict01 someconflict0001]" || rejected["customers"] != nil {
		t.Fatalf("push to conflicts: %v", res)
	}
	if fmt.Sprint(res["accepted"].(map[string]any)["customers"]) != "[besideforged0001]" {
		t.Fatalf("the customer pushed beside the forged conflict: %v", res)
	}
	h.call("GET", "/v1/customers/besideforged0001", w.m1, nil, 200)
	h.call("GET", "/v1/conflicts/forgedconflict01", w.admin, nil, 404)
	h.call("POST", "/v1/conflicts/forgedconflict01/resolve", w.m1, map[string]any{"action": "revert"}, 404)
	if c := h.call("GET", "/v1/customers/"+theirs, w.admin, nil, 200); c["owner_id"] != w.r2.id {
		t.Fatalf("owner changed to %v", c["owner_id"])
	}
	for _, table := range h.call("GET", "/v1/sync/schema", w.r1, nil, 200)["tables"].([]any) {
		tb := table.(map[string]any)
		if tb["name"] != "conflicts" {
			continue
		}
		for _, col := range tb["columns"].([]any) {
			if col.(map[string]any)["readOnly"] != true {
				t.Fatalf("conflicts column %v is writable in the schema", col)
			}
		}
	}
}

// A conflict on a national ID keeps the number sealed: the rep sees it
// masked in the conflicts list and in sync, an admin sees it whole, and the
// number in clear is nowhere in what the rep can read. The masked number a
// rep reads and sends back (REST or sync) leaves the real one in place.
func TestNationalIDsInConflictsAreMaskedAndMaskedValuesChangeNothing(t *testing.T) {
	w := newWorld(t)
	h := w.h
	const first, second = "110101199003074514", "11010119900307002X"
	id := h.newCustomer(w.r1, map[string]any{"name": "王伟", "kind": "person", "national_id": first})["id"].(string)
	phone := h.device(w.r1, "phone-a")
	h.call("PATCH", "/v1/customers/"+id, w.admin, map[string]any{"national_id": second}, 200)
	res := phone.push(map[string]any{"customers": map[string]any{"updated": []any{updated(id, map[string]any{"national_id": "110101199901011234"})}}}, 200)
	if fmt.Sprint(res["conflicted"].(map[string]any)["customers"]) != "["+id+"]" {
		t.Fatalf("push over the admin's edit: %v", res)
	}
	repView := h.do("GET", "/v1/conflicts?record_id="+id, w.r1.access, nil)
	h.expect(repView, 200, "rep's conflicts")
	if strings.Contains(string(repView.body), second) || !strings.Contains(string(repView.body), "110***********002X") {
		t.Fatalf("the rep's conflicts show the number in clear or not masked: %s", repView.body)
	}
	_, records := phone.pull()
	for _, rec := range records {
		if strings.Contains(fmt.Sprint(rec), second) {
			t.Fatalf("a synced record holds the number in clear: %v", rec)
		}
	}
	admin := h.call("GET", "/v1/conflicts?record_id="+id, w.admin, nil, 200)["data"].([]any)[0].(map[string]any)
	if admin["server_value"] != `"`+second+`"` {
		t.Fatalf("the admin's conflict: %v", admin)
	}
	// As stored: both values sealed, neither number in clear.
	var stored []map[string]any
	q := models.Query{Tenant: w.admin.tenant, Scope: models.Scope{All: true}, Conds: []models.Cond{{Field: "record_id", Op: models.OpEq, Value: id}}}
	if err := h.store.Find(context.Background(), "conflicts", q, &stored); err != nil || len(stored) != 1 {
		t.Fatalf("stored conflicts of %s: %d, %v", id, len(stored), err)
	}
	for _, col := range []string{"server_value", "device_value"} {
		if v, _ := stored[0][col].(string); !strings.HasPrefix(v, "v1:") {
			t.Fatalf("stored conflict's %s is not sealed: %q", col, v)
		}
	}
	if raw := fmt.Sprint(stored[0]); strings.Contains(raw, second) || strings.Contains(raw, "110101199901011234") {
		t.Fatalf("the stored conflict holds a number in clear: %v", raw)
	}
	personal := h.do("GET", "/v1/customers/"+id+"/personal-data", w.admin.access, nil)
	h.expect(personal, 200, "access request")
	// At most the conflict itself, shown to the admin; never the history.
	if strings.Count(string(personal.body), second) > 1 {
		t.Fatalf("the history keeps the number in clear: %s", personal.body)
	}
	// The device's value won; the rep reads it masked and sends the mask back.
	masked := h.call("GET", "/v1/customers/"+id, w.r1, nil, 200)["national_id"].(string)
	if masked != "110***********1234" {
		t.Fatalf("the rep reads %q", masked)
	}
	h.call("PATCH", "/v1/customers/"+id, w.r1, map[string]any{"national_id": masked, "title": "Boss"}, 200)
	phone.pull()
	phone.push(map[string]any{"customers": map[string]any{"updated": []any{updated(id, map[string]any{"national_id": masked})}}}, 200)
	if got := h.call("GET", "/v1/customers/"+id, w.admin, nil, 200)["national_id"]; got != "110101199901011234" {
		t.Fatalf("the masked value replaced the number: %v", got)
	}
	h.call("PATCH", "/v1/customers/"+id, w.r1, map[string]any{"national_id": "110****1234"}, 422)
}

// Resolving a conflict re-applies a value through the record's own write
// path: the resolver's rights and the record's rules hold.
func TestRevertGoesThroughTheRecordsRules(t *testing.T) {
	w := newWorld(t)
	h := w.h
	id := h.newCustomer(w.r1, map[string]any{"name": "Shared", "title": "CEO"})["id"].(string)
	a := h.device(w.r1, "phone-a")
	h.call("PATCH", "/v1/customers/"+id, w.m1, map[string]any{"title": "Owner"}, 200)
	a.push(map[string]any{"customers": map[string]any{"updated": []any{updated(id, map[string]any{"title": "Boss"})}}}, 200)
	conflict := h.call("GET", "/v1/conflicts?record_id="+id, w.m1, nil, 200)["data"].([]any)[0].(map[string]any)
	cid := conflict["id"].(string)
	h.call("POST", "/v1/conflicts/"+cid+"/resolve", w.r2, map[string]any{"action": "revert"}, 404)
	h.call("POST", "/v1/conflicts/"+cid+"/resolve", w.m2, map[string]any{"action": "revert"}, 404)
	h.call("POST", "/v1/conflicts/"+cid+"/resolve", w.m1, map[string]any{"action": "revert"}, 200)
	if c := h.call("GET", "/v1/customers/"+id, w.r1, nil, 200); c["title"] != "Owner" {
		t.Fatalf("revert left title %v", c["title"])
	}
}

// A pushed time outside what a record can hold is that row's problem: the
// row is rejected alone, the rest of the push applies, and a retry answers
// the same (no 500, no wedged device).
func TestPushedTimesOutOfRangeRejectTheirRowAlone(t *testing.T) {
	w := newWorld(t)
	h := w.h
	phone := h.device(w.r1, "phone-a")
	now := float64(h.clock.Now().UnixMilli())
	changes := map[string]any{
		"customers": map[string]any{"created": []any{map[string]any{"id": "timecust00000001", "name": "Time Co"}}},
		"interactions": map[string]any{"created": []any{
			map[string]any{"id": "goodcall00000001", "customer_id": "timecust00000001", "channel": "phone", "occurred_at": now},
			map[string]any{"id": "badcall000000001", "customer_id": "timecust00000001", "channel": "phone", "occurred_at": 1e20},
			map[string]any{"id": "badcall000000002", "customer_id": "timecust00000001", "channel": "phone", "occurred_at": -1e17},
		}},
		"tasks": map[string]any{"created": []any{
			map[string]any{"id": "badtask000000001", "customer_id": "timecust00000001", "title": "t", "due_at": 1e300},
			map[string]any{"id": "badtask000000002", "customer_id": "timecust00000001", "title": "t", "due_at": float64(253402300800000)}, // year 10000
		}},
	}
	for round := range 2 {
		res := phone.push(changes, 200)
		rejected := res["experimentalRejectedIds"].(map[string]any)
		got := fmt.Sprint(rejected["interactions"], rejected["tasks"])
		if got != "[badcall000000001 badcall000000002] [badtask000000001 badtask000000002]" {
			t.Fatalf("round %d: rejected %v (%v)", round, got, res)
		}
		if !strings.Contains(fmt.Sprint(res["rejected"]), "within years 0001 to 9999") {
			t.Fatalf("round %d: reasons %v", round, res["rejected"])
		}
	}
	h.call("GET", "/v1/interactions/goodcall00000001", w.r1, nil, 200)
	h.call("GET", "/v1/interactions/badcall000000001", w.r1, nil, 404)
}

// When what the server stores differs from what a device pushed, the device
// receives the stored value on its next pull: also when the push gave the
// record no new version (X's tags ["c"] union the stored ["a","b","c"] is the
// stored list, so nothing is written, yet X must end with ["a","b","c"]), and
// when the server normalized what was pushed (a phone number in another
// format). A push equal to the stored value does not come back.
func TestADeviceReceivesTheValueItsPushMergedInto(t *testing.T) {
	w := newWorld(t)
	h := w.h
	x := h.device(w.r1, "phone-x")
	x.push(map[string]any{"customers": map[string]any{"created": []any{map[string]any{"id": "tagcust000000001", "name": "Tags Co", "tags": jsonString([]string{})}}}}, 200)
	x.pull()
	y := h.device(w.r1, "phone-y")
	y.push(map[string]any{"customers": map[string]any{"updated": []any{updated("tagcust000000001", map[string]any{"tags": jsonString([]string{"a", "b", "c"})})}}}, 200)
	// X edited offline; WatermelonDB pulls first and keeps X's changed column.
	x.pull()
	x.push(map[string]any{"customers": map[string]any{"updated": []any{updated("tagcust000000001", map[string]any{"tags": jsonString([]string{"c"})})}}}, 200)
	_, records := x.pull()
	if got := records["tagcust000000001"]["tags"]; got != jsonString([]string{"a", "b", "c"}) {
		t.Fatalf("phone X holds tags %v, the server %v", got, h.call("GET", "/v1/customers/tagcust000000001", w.r1, nil, 200)["tags"])
	}
	// A push equal to the stored value changes nothing and does not come back.
	x.push(map[string]any{"customers": map[string]any{"updated": []any{updated("tagcust000000001", map[string]any{"tags": jsonString([]string{"a", "b", "c"})})}}}, 200)
	kinds, _ := x.pull()
	if slices.Contains(kinds["customers/updated"], "tagcust000000001") {
		t.Fatalf("a push equal to the stored value came back: %v", kinds)
	}
	// A phone number pushed in another format comes back in the stored,
	// normalized form.
	spaced := jsonString([]map[string]string{{"label": "mobile", "number": "138 0013 8000"}})
	x.push(map[string]any{"customers": map[string]any{"updated": []any{updated("tagcust000000001", map[string]any{"phones": spaced})}}}, 200)
	kinds, records = x.pull()
	stored := jsonString(h.call("GET", "/v1/customers/tagcust000000001", w.r1, nil, 200)["phones"])
	if got := records["tagcust000000001"]["phones"]; !slices.Contains(kinds["customers/updated"], "tagcust000000001") ||
		got != stored || !strings.Contains(stored, `"+8613800138000"`) {
		t.Fatalf("phone X pushed %s and holds %v, the server %s (%v)", spaced, got, stored, kinds)
	}
}

// A push whose cursor the server cannot vouch for (ahead of its changes: a
// restored database, another server) is applied blind: every column that
// differs from what someone else wrote is a recorded conflict, nothing is
// lost, and the device is told to resync by its next pull.
func TestPushWithAForeignCursorIsAppliedBlindAndRecordsConflicts(t *testing.T) {
	w := newWorld(t)
	h := w.h
	id := h.newCustomer(w.r1, map[string]any{"name": "Blind", "title": "CEO"})["id"].(string)
	h.call("PATCH", "/v1/customers/"+id, w.m1, map[string]any{"title": "Owner"}, 200)
	phone := h.device(w.r1, "phone-a")
	phone.cursor = "999999999"
	res := phone.push(map[string]any{"customers": map[string]any{"updated": []any{updated(id, map[string]any{"title": "Boss"})}}}, 200)
	if fmt.Sprint(res["conflicted"].(map[string]any)["customers"]) != "["+id+"]" {
		t.Fatalf("blind push: %v", res)
	}
	if c := h.call("GET", "/v1/customers/"+id, w.r1, nil, 200); c["title"] != "Boss" {
		t.Fatalf("title %v", c["title"])
	}
	h.call("GET", "/v1/sync/pull?last_pulled_at=999999999", phone.as, nil, 410)
}
