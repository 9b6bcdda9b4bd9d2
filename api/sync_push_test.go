package api_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// device is one phone of a user: its own session (device id) and sync cursor.
type device struct {
	h      *harness
	as     account
	cursor string
}

func (h *harness) device(user account, id string) *device {
	h.t.Helper()
	r := h.do("POST", "/v1/auth/login", "", map[string]any{"email": user.email, "password": testPassword, "device_id": id})
	h.expect(r, 200, "login "+id)
	a := user
	a.access = r.json(h.t)["access_token"].(string)
	d := &device{h: h, as: a, cursor: "null"}
	d.pull()
	return d
}

// pull syncs down and returns what came, like pullAll.
func (d *device) pull() (map[string][]string, map[string]map[string]any) {
	kinds, records, cursor := d.h.pullAll(d.as, d.cursor)
	d.cursor = cursor
	return kinds, records
}

// push sends changes with the device's cursor and insists on the status.
func (d *device) push(changes map[string]any, want int) map[string]any {
	d.h.t.Helper()
	return d.h.call("POST", "/v1/sync/push?last_pulled_at="+d.cursor, d.as, map[string]any{"changes": changes}, want)
}

func jsonString(v any) string {
	raw, _ := json.Marshal(v)
	return string(raw)
}

func updated(id string, cols map[string]any) map[string]any {
	row := map[string]any{"id": id, "_status": "updated"}
	var changed []string
	for k, v := range cols {
		row[k] = v
		changed = append(changed, k)
	}
	slices.Sort(changed)
	row["_changed"] = strings.Join(changed, ",")
	return row
}

func TestPushCreatesOfflineRecordsAndTheNumberArrivesByPull(t *testing.T) {
	w := newWorld(t)
	h := w.h
	phone := h.device(w.r1, "phone-a")
	changes := map[string]any{
		"customers": map[string]any{"created": []any{map[string]any{
			"id": "wmcust0000000001", "_status": "created", "_changed": "", "name": "Offline Co", "kind": "company",
			"phones": jsonString([]any{map[string]any{"label": "office", "number": "020 8888 6666"}}),
			"tags":   jsonString([]string{"new"}), "number": "", "created_at": 0.0,
		}}, "updated": []any{}, "deleted": []any{}},
		"interactions": map[string]any{"created": []any{map[string]any{
			"id": "wmcall0000000001", "customer_id": "wmcust0000000001", "channel": "visit", "content": "first visit",
			"occurred_at": float64(h.clock.Now().UnixMilli()),
		}}},
	}
	res := phone.push(changes, 200)
	if fmt.Sprint(res["accepted"].(map[string]any)["customers"]) != "[wmcust0000000001]" || len(res["experimentalRejectedIds"].(map[string]any)) != 0 {
		t.Fatalf("push result %v", res)
	}
	c := h.call("GET", "/v1/customers/wmcust0000000001", w.r1, nil, 200)
	if c["phones"].([]any)[0].(map[string]any)["number"] != "+862088886666" || c["number"] == "" {
		t.Fatalf("stored customer %v", c)
	}
	auditBefore := len(h.call("GET", "/v1/audit?limit=200", w.admin, nil, 200)["data"].([]any))
	// The response was lost; the phone pushes the same again: nothing changes.
	again := phone.push(changes, 200)
	if fmt.Sprint(again["accepted"].(map[string]any)["interactions"]) != "[wmcall0000000001]" {
		t.Fatalf("retried push %v", again)
	}
	if n := len(h.call("GET", "/v1/audit?limit=200", w.admin, nil, 200)["data"].([]any)); n != auditBefore {
		t.Fatalf("a retried push wrote %d audit entries", n-auditBefore)
	}
	_, records := phone.pull()
	if records["wmcust0000000001"]["number"] != c["number"] {
		t.Fatalf("number did not reach the phone: %v", records["wmcust0000000001"])
	}
}

func TestPushMergesFieldsAndRecordsConflicts(t *testing.T) {
	w := newWorld(t)
	h := w.h
	id := h.newCustomer(w.r1, map[string]any{"name": "Shared", "title": "CEO", "tags": []string{"old"}})["id"].(string)
	a := h.device(w.r1, "phone-a")
	b := h.device(w.r1, "tablet-b")
	// Different fields on two devices: both survive, no conflict.
	a.push(map[string]any{"customers": map[string]any{"updated": []any{updated(id, map[string]any{"industry": "retail"})}}}, 200)
	res := b.push(map[string]any{"customers": map[string]any{"updated": []any{updated(id, map[string]any{"region": "North"})}}}, 200)
	if len(res["conflicted"].(map[string]any)["customers"].([]any)) != 0 {
		t.Fatalf("different fields conflicted: %v", res)
	}
	c := h.call("GET", "/v1/customers/"+id, w.r1, nil, 200)
	if c["industry"] != "retail" || c["region"] != "North" {
		t.Fatalf("merge lost an edit: %v %v", c["industry"], c["region"])
	}
	// The same field on both: the later push wins, the other value is kept.
	a.pull()
	b.pull()
	a.push(map[string]any{"customers": map[string]any{"updated": []any{updated(id, map[string]any{"title": "Owner", "tags": jsonString([]string{"old", "a"})})}}}, 200)
	res = b.push(map[string]any{"customers": map[string]any{"updated": []any{updated(id, map[string]any{"title": "Boss", "tags": jsonString([]string{"old", "b"})})}}}, 200)
	if fmt.Sprint(res["conflicted"].(map[string]any)["customers"]) != "["+id+"]" {
		t.Fatalf("same-field edits did not conflict: %v", res)
	}
	if text := scrape(t, h.server.SystemHandler()); !strings.Contains(text, `fieldcrm_sync_conflicts_total{table="customers"} 1`+"\n") ||
		!strings.Contains(text, `fieldcrm_sync_conflicts_total{table="contacts"} 0`+"\n") {
		t.Errorf("the conflict is not counted by table:\n%s", grepLines(text, "fieldcrm_sync_conflicts_total"))
	}
	c = h.call("GET", "/v1/customers/"+id, w.r1, nil, 200)
	if c["title"] != "Boss" || fmt.Sprint(c["tags"]) != "[old a b]" {
		t.Fatalf("after conflict: title %v tags %v", c["title"], c["tags"])
	}
	conflicts := h.call("GET", "/v1/conflicts?record_id="+id, w.m1, nil, 200)["data"].([]any) // the manager sees them
	var title map[string]any
	for _, x := range conflicts {
		if m := x.(map[string]any); m["column"] == "title" {
			title = m
		}
	}
	if len(conflicts) != 2 || title == nil || title["server_value"] != `"Owner"` || title["device_value"] != `"Boss"` ||
		title["device_id"] != "tablet-b" || title["kept"] != "device" {
		t.Fatalf("conflicts %v", conflicts)
	}
	h.call("GET", "/v1/conflicts/"+title["id"].(string), w.r2, nil, 404)
	h.call("POST", "/v1/conflicts/"+title["id"].(string)+"/resolve", w.r1, map[string]any{"action": "undo"}, 422)
	h.call("POST", "/v1/conflicts/"+title["id"].(string)+"/resolve", w.r1, map[string]any{"action": "revert"}, 200)
	h.call("POST", "/v1/conflicts/"+title["id"].(string)+"/resolve", w.r1, map[string]any{"action": "revert"}, 409)
	if c = h.call("GET", "/v1/customers/"+id, w.r1, nil, 200); c["title"] != "Owner" {
		t.Fatalf("revert left title %v", c["title"])
	}
	// The same device editing a field again is no conflict with itself.
	b.pull()
	b.push(map[string]any{"customers": map[string]any{"updated": []any{updated(id, map[string]any{"title": "Chair"})}}}, 200)
	b.pull()
	res = b.push(map[string]any{"customers": map[string]any{"updated": []any{updated(id, map[string]any{"title": "Chair2"})}}}, 200)
	if len(res["conflicted"].(map[string]any)["customers"].([]any)) != 0 {
		t.Fatalf("a device conflicted with itself: %v", res)
	}
}

// WatermelonDB pages by calling synchronize() again while has_more, and each
// call pushes after its pull: a push between two pages is judged from where
// the device stood before the round, as after a pull of one page. The
// device kept its own value over the change the first page brought (client
// wins locally), so that change is a conflict, not silently overwritten.
func TestPushBetweenPagesConflictsWithChangesOfEarlierPages(t *testing.T) {
	w := newWorld(t)
	h := w.h
	id := h.newCustomer(w.r1, map[string]any{"name": "Paged"})["id"].(string)
	a := h.device(w.r1, "phone-a")
	h.call("PATCH", "/v1/customers/"+id, w.m1, map[string]any{"industry": "mining"}, 200)
	for i := range testPullPage + 2 {
		h.newCustomer(w.r1, map[string]any{"name": fmt.Sprint("Later ", i)})
	}
	r := h.do("GET", "/v1/sync/pull?last_pulled_at="+a.cursor, a.as.access, nil)
	h.expect(r, 200, "first page")
	var page struct {
		Timestamp int64 `json:"timestamp"`
		HasMore   bool  `json:"has_more"`
	}
	if err := json.Unmarshal(r.body, &page); err != nil || !page.HasMore {
		t.Fatalf("first page: %v, has_more %v", err, page.HasMore)
	}
	a.cursor = strconv.FormatInt(page.Timestamp, 10)
	res := a.push(map[string]any{"customers": map[string]any{"updated": []any{updated(id, map[string]any{"industry": "energy"})}}}, 200)
	if fmt.Sprint(res["conflicted"].(map[string]any)["customers"]) != "["+id+"]" {
		t.Fatalf("a push between pages overwrote the earlier page's change silently: %v", res)
	}
	conflicts := h.call("GET", "/v1/conflicts?record_id="+id, w.m1, nil, 200)["data"].([]any)
	if len(conflicts) != 1 || conflicts[0].(map[string]any)["server_value"] != `"mining"` {
		t.Fatalf("conflicts %v", conflicts)
	}
}

// What the server makes from a push is new to the pushing device; and a
// device pulling from null (after a 410 reset) holds nothing, also not what
// it created itself: both come as created, as WatermelonDB expects.
func TestPullSendsAsCreatedWhatTheDeviceDoesNotHold(t *testing.T) {
	w := newWorld(t)
	h := w.h
	a := h.device(w.r1, "phone-a")
	due := time.Now().Add(48 * time.Hour).UTC().Format(time.RFC3339)
	a.push(map[string]any{
		"customers": map[string]any{"created": []any{map[string]any{"id": "offlinecustomer01", "name": "Offline Co", "kind": "company"}}},
		"interactions": map[string]any{"created": []any{map[string]any{"id": "offlinevisit0001", "customer_id": "offlinecustomer01",
			"channel": "visit", "occurred_at": time.Now().UnixMilli(), "next_step": jsonString(map[string]any{"title": "Quote", "due_at": due})}}},
	}, 200)
	kinds, records := a.pull()
	task, _ := records["offlinevisit0001"]["next_step"].(string)
	var next struct {
		TaskID string `json:"task_id"`
	}
	if err := json.Unmarshal([]byte(task), &next); err != nil || next.TaskID == "" {
		t.Fatalf("the visit's next step %q: %v", task, err)
	}
	if !slices.Equal(kinds["tasks/created"], []string{next.TaskID}) || !slices.Equal(kinds["customers/updated"], []string{"offlinecustomer01"}) {
		t.Fatalf("the pushing device's pull: %v", kinds)
	}
	kinds, _, _ = h.pullAll(a.as, "null")
	if !slices.Equal(kinds["customers/created"], []string{"offlinecustomer01"}) || !slices.Equal(kinds["interactions/created"], []string{"offlinevisit0001"}) ||
		len(kinds["customers/updated"])+len(kinds["interactions/updated"])+len(kinds["tasks/updated"]) != 0 {
		t.Fatalf("the device's pull from null: %v", kinds)
	}
}

func TestPushDeletesPropagateAndEditsMeetingDeletesAreRecorded(t *testing.T) {
	w := newWorld(t)
	h := w.h
	id := h.newCustomer(w.r1, map[string]any{"name": "Doomed"})["id"].(string)
	a := h.device(w.r1, "phone-a")
	b := h.device(w.r1, "tablet-b")
	a.push(map[string]any{"customers": map[string]any{"deleted": []any{id}}}, 200)
	res := b.push(map[string]any{"customers": map[string]any{"updated": []any{updated(id, map[string]any{"name": "Saved?"})}}}, 200)
	if fmt.Sprint(res["conflicted"].(map[string]any)["customers"]) != "["+id+"]" {
		t.Fatalf("edit of a deleted record: %v", res)
	}
	kinds, _ := b.pull()
	if !slices.Contains(kinds["customers/deleted"], id) {
		t.Fatalf("the delete did not reach the other device: %v", kinds)
	}
	conflict := h.call("GET", "/v1/conflicts?record_id="+id, w.r1, nil, 200)["data"].([]any)[0].(map[string]any)
	if conflict["column"] != "*" || conflict["policy"] != "delete_wins" || conflict["kept"] != "server" {
		t.Fatalf("conflict %v", conflict)
	}
	h.call("POST", "/v1/conflicts/"+conflict["id"].(string)+"/resolve", w.r1, map[string]any{"action": "revert"}, 200)
	if c := h.call("GET", "/v1/customers/"+id, w.r1, nil, 200); c["deleted_at"] != nil || c["name"] != "Saved?" {
		t.Fatalf("revert did not bring the record back with the edit: %v", c)
	}
}

func TestPushRejectsRecordsTheUserMayNotWriteAndAppliesTheRest(t *testing.T) {
	w := newWorld(t)
	h := w.h
	theirs := h.newCustomer(w.r2, map[string]any{"name": "Not yours"})["id"].(string)
	phone := h.device(w.r1, "phone-a")
	res := phone.push(map[string]any{"customers": map[string]any{
		"created": []any{
			map[string]any{"id": "okcustomer000001", "name": "Fine"},
			map[string]any{"id": "badphone00000001", "name": "Bad", "phones": jsonString([]any{map[string]any{"number": "12"}})},
		},
		"updated": []any{updated(theirs, map[string]any{"name": "Mine now"})},
	}}, 200)
	rejected := fmt.Sprint(res["experimentalRejectedIds"].(map[string]any)["customers"])
	if rejected != "[badphone00000001 "+theirs+"]" || fmt.Sprint(res["accepted"].(map[string]any)["customers"]) != "[okcustomer000001]" {
		t.Fatalf("push result %v", res)
	}
	if h.call("GET", "/v1/customers/"+theirs, w.r2, nil, 200)["name"] != "Not yours" {
		t.Fatal("another rep's customer was changed")
	}
	h.call("GET", "/v1/customers/badphone00000001", w.r1, nil, 404)
	text := scrape(t, h.server.SystemHandler())
	for _, want := range []string{`fieldcrm_sync_rejections_total{table="customers"} 2`, `fieldcrm_sync_push_records_count 1`, `fieldcrm_sync_push_records_sum 3`} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("metrics lack %s:\n%s", want, grepLines(text, "fieldcrm_sync_"))
		}
	}
}

// grepLines returns the lines of text that start with prefix.
func grepLines(text, prefix string) string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, prefix) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

func TestPushBadInputIs4xxAndWritesNothing(t *testing.T) {
	w := newWorld(t)
	h := w.h
	id := h.newCustomer(w.r1, map[string]any{"name": "Stable"})["id"].(string)
	phone := h.device(w.r1, "phone-a")
	good := map[string]any{"id": "newcustomer00001", "name": "Would be created"}
	cases := []struct {
		name    string
		changes map[string]any
	}{
		{"unknown table", map[string]any{"leads": map[string]any{"created": []any{good}}}},
		{"unknown column", map[string]any{"customers": map[string]any{"created": []any{good, map[string]any{"id": "x1", "nickname": "n"}}}}},
		{"wrong type", map[string]any{"customers": map[string]any{"created": []any{good, map[string]any{"id": "x2", "name": 5}}}}},
		{"bad JSON column", map[string]any{"customers": map[string]any{"created": []any{good, map[string]any{"id": "x3", "phones": "[{"}}}}},
		{"no id", map[string]any{"customers": map[string]any{"created": []any{good, map[string]any{"name": "no id"}}}}},
		{"bad deleted id", map[string]any{"customers": map[string]any{"created": []any{good}, "deleted": []any{"has space"}}}},
		{"null non-optional", map[string]any{"customers": map[string]any{"created": []any{good}, "updated": []any{updated(id, map[string]any{"credit_limit": nil})}}}},
		{"_changed names no column", map[string]any{"customers": map[string]any{"created": []any{good}, "updated": []any{updated(id, map[string]any{"name": "N", "_changed": "name,nickname"})}}}},
	}
	before := h.call("GET", "/v1/customers/"+id, w.r1, nil, 200)["version"]
	for _, c := range cases {
		r := h.do("POST", "/v1/sync/push?last_pulled_at="+phone.cursor, phone.as.access, map[string]any{"changes": c.changes})
		h.expect(r, 422, c.name)
	}
	for _, q := range []string{"", "?last_pulled_at=abc", "?last_pulled_at=0", "?last_pulled_at=-5"} {
		r := h.do("POST", "/v1/sync/push"+q, phone.as.access, map[string]any{"changes": map[string]any{"customers": map[string]any{"created": []any{good}}}})
		h.expect(r, 422, "cursor "+q)
	}
	h.expect(h.do("POST", "/v1/sync/push?last_pulled_at="+phone.cursor, phone.as.access, `{"changes": {`), 400, "malformed")
	h.expect(h.do("POST", "/v1/sync/push?last_pulled_at="+phone.cursor, phone.as.access, `{"changes": {}, "extra": 1}`), 422, "unknown top-level field")
	h.call("GET", "/v1/customers/newcustomer00001", w.r1, nil, 404)
	if after := h.call("GET", "/v1/customers/"+id, w.r1, nil, 200)["version"]; after != before {
		t.Fatalf("version %v → %v", before, after)
	}
}

func TestPushOverTheRecordLimitIsRefusedWhole(t *testing.T) {
	w := newWorld(t)
	h := w.h
	phone := h.device(w.r1, "phone-a")
	ids := make([]any, 5001)
	for i := range ids {
		ids[i] = fmt.Sprintf("gone%012d", i)
	}
	r := h.do("POST", "/v1/sync/push?last_pulled_at="+phone.cursor, phone.as.access,
		map[string]any{"changes": map[string]any{"customers": map[string]any{"deleted": ids}}})
	h.expect(r, 422, "5001 records")
	if !strings.Contains(string(r.body), "at most 5000 records") {
		t.Fatalf("problem does not name the limit: %s", r.body)
	}
}

// A push's updates and deletes of different records are applied side by
// side; what the device is told, and what the server ends with, must be what
// applying them one after another in the push's order gives.
func TestPushOfManyRowsFilesOutcomesInThePushOrder(t *testing.T) {
	w := newWorld(t)
	h := w.h
	var mine []string
	for i := range 24 {
		mine = append(mine, h.newCustomer(w.r1, map[string]any{"name": fmt.Sprint("Side ", i)})["id"].(string))
	}
	theirs := h.newCustomer(w.r2, map[string]any{"name": "Not yours"})["id"].(string)
	phone := h.device(w.r1, "phone-a")
	// Someone else edits the titles of two customers after the phone's pull.
	for _, id := range mine[5:7] {
		h.call("PATCH", "/v1/customers/"+id, w.m1, map[string]any{"title": "Manager's"}, 200)
	}
	var rows []any
	var wantAccepted []string
	for i, id := range mine[:20] {
		rows = append(rows, updated(id, map[string]any{"industry": fmt.Sprint("ind-", i), "title": "Rep's"}))
		if i == 9 {
			rows = append(rows, updated(theirs, map[string]any{"industry": "taken"}))
		}
		if i != 5 && i != 6 {
			wantAccepted = append(wantAccepted, id)
		}
	}
	// One record twice (edited, then deleted), and two customers given one
	// new phone: both pairs must be applied in order.
	rows = append(rows, updated(mine[20], map[string]any{"industry": "gone soon"}))
	samePhone := jsonString([]any{map[string]any{"number": "13900139000"}})
	rows = append(rows, updated(mine[21], map[string]any{"phones": samePhone}), updated(mine[22], map[string]any{"phones": samePhone}))
	// The id updated and deleted is accepted twice, as each row is.
	wantAccepted = append(wantAccepted, mine[20], mine[21], mine[22], mine[23], mine[20])
	res := phone.push(map[string]any{"customers": map[string]any{"updated": rows, "deleted": []any{mine[23], mine[20]}}}, 200)

	accepted := res["accepted"].(map[string]any)["customers"].([]any)
	if fmt.Sprint(accepted) != fmt.Sprint(wantAccepted) {
		t.Fatalf("accepted\n got %v\nwant %v", accepted, wantAccepted)
	}
	if got := fmt.Sprint(res["conflicted"].(map[string]any)["customers"]); got != fmt.Sprint(mine[5:7]) {
		t.Fatalf("conflicted %v, want %v", got, mine[5:7])
	}
	if got := fmt.Sprint(res["experimentalRejectedIds"].(map[string]any)["customers"]); got != "["+theirs+"]" {
		t.Fatalf("rejected %v", got)
	}
	for i, id := range mine[:20] {
		c := h.call("GET", "/v1/customers/"+id, w.r1, nil, 200)
		if c["industry"] != fmt.Sprint("ind-", i) || c["title"] != "Rep's" {
			t.Fatalf("customer %d after the push: industry %v title %v", i, c["industry"], c["title"])
		}
	}
	for _, id := range []string{mine[20], mine[23]} {
		if c := h.call("GET", "/v1/customers/"+id, w.r1, nil, 200); c["deleted_at"] == nil {
			t.Fatalf("customer %s was not deleted", id)
		}
	}
	if c := h.call("GET", "/v1/customers/"+mine[22], w.r1, nil, 200); fmt.Sprint(c["duplicate"]) == "<nil>" ||
		!slices.Contains(c["duplicate"].(map[string]any)["candidate_ids"].([]any), any(mine[21])) {
		t.Fatalf("the second customer given the phone is not flagged as the first's duplicate: %v", c["duplicate"])
	}
	if h.call("GET", "/v1/customers/"+theirs, w.r2, nil, 200)["industry"] == "taken" {
		t.Fatal("another rep's customer was changed")
	}
	if n := len(h.call("GET", "/v1/conflicts?record_id="+mine[5], w.r1, nil, 200)["data"].([]any)); n != 1 {
		t.Fatalf("conflicts recorded for %s: %d", mine[5], n)
	}
}
