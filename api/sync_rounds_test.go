package api_test

import (
	"fmt"
	"testing"
)

// A push is judged from where its device stood before its last pull, and
// the server keeps that in the database: with Redis emptied between a
// phone's pull and its push (a restart of the default deployment), a
// manager's edit the phone overwrote offline is still a recorded conflict,
// not lost without a trace.
func TestPushAfterRedisLostBetweenPullAndPushStillRecordsTheConflict(t *testing.T) {
	w := newWorld(t)
	h := w.h
	id := h.newCustomer(w.r1, map[string]any{"name": "Rounds Co", "title": "CEO"})["id"].(string)
	phone := h.device(w.r1, "phone-a")
	// The manager edits; the phone, offline, edits the same column, then
	// syncs: WatermelonDB pulls first (keeping its own value) and pushes.
	h.call("PATCH", "/v1/customers/"+id, w.m1, map[string]any{"title": "Owner"}, 200)
	phone.pull()
	h.redis.Flush(t)
	res := phone.push(map[string]any{"customers": map[string]any{"updated": []any{updated(id, map[string]any{"title": "Boss"})}}}, 200)
	if fmt.Sprint(res["conflicted"].(map[string]any)["customers"]) != "["+id+"]" {
		t.Fatalf("push after Redis was emptied: %v, want customer %s conflicted", res, id)
	}
	conflicts := h.call("GET", "/v1/conflicts?record_id="+id, w.m1, nil, 200)["data"].([]any)
	found := false
	for _, c := range conflicts {
		c := c.(map[string]any)
		found = found || (c["column"] == "title" && c["server_value"] == `"Owner"`)
	}
	if !found {
		t.Fatalf("no conflict keeps the manager's title: %v", conflicts)
	}
}
