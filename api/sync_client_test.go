package api_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"testing"
)

// TestFirstPullIsWhatTurboLoginTakes: WatermelonDB's Turbo Login hands the
// first pull's body, unparsed, to the native side, which takes only
// {changes, timestamp, ...} with created records and nothing deleted. The
// first page of a first sync is that, also when the user deleted records
// before; and each page says, in headers, how many records it holds and the
// sync number its round runs up to (a client's progress bar).
func TestFirstPullIsWhatTurboLoginTakes(t *testing.T) {
	w := newWorld(t)
	h := w.h
	var ids []string
	for i := range 10 {
		ids = append(ids, h.newCustomer(w.r1, map[string]any{"name": fmt.Sprint("Turbo ", i)})["id"].(string))
	}
	h.call("DELETE", "/v1/customers/"+ids[0], w.r1, nil, 204)
	h.call("DELETE", "/v1/customers/"+ids[1], w.r1, nil, 204)

	cursor, seen, pages := "null", 0, 0
	for {
		r := h.do("GET", "/v1/sync/pull?last_pulled_at="+cursor+"&schema_version=1", w.r1.access, nil)
		h.expect(r, 200, "pull")
		var body map[string]json.RawMessage
		if err := json.Unmarshal(r.body, &body); err != nil {
			t.Fatalf("page %d is not JSON: %v", pages, err)
		}
		if keys := slices.Sorted(maps.Keys(body)); !slices.Equal(keys, []string{"changes", "has_more", "timestamp"}) {
			t.Fatalf("page %d has keys %v", pages, keys)
		}
		var changes map[string]map[string][]json.RawMessage
		var timestamp int64
		var hasMore bool
		if err := json.Unmarshal(body["changes"], &changes); err != nil {
			t.Fatal(err)
		}
		_ = json.Unmarshal(body["timestamp"], &timestamp)
		_ = json.Unmarshal(body["has_more"], &hasMore)
		inPage := 0
		for table, tc := range changes {
			if keys := slices.Sorted(maps.Keys(tc)); !slices.Equal(keys, []string{"created", "deleted", "updated"}) {
				t.Fatalf("page %d, %s has keys %v", pages, table, keys)
			}
			inPage += len(tc["created"]) + len(tc["updated"]) + len(tc["deleted"])
			if pages == 0 && (len(tc["deleted"]) != 0 || len(tc["updated"]) != 0) {
				t.Fatalf("the first page of a first sync has %d updated and %d deleted %s; Turbo Login takes created only",
					len(tc["updated"]), len(tc["deleted"]), table)
			}
		}
		if got := r.header.Get("X-Sync-Records"); got != strconv.Itoa(inPage) {
			t.Fatalf("page %d: X-Sync-Records %q, %d records in the body", pages, got, inPage)
		}
		until, err := strconv.ParseInt(r.header.Get("X-Sync-Until"), 10, 64)
		if err != nil || until < timestamp || (!hasMore && until != timestamp) {
			t.Fatalf("page %d: X-Sync-Until %q with timestamp %d, has_more %v", pages, r.header.Get("X-Sync-Until"), timestamp, hasMore)
		}
		seen += len(changes["customers"]["created"])
		cursor, pages = strconv.FormatInt(timestamp, 10), pages+1
		if !hasMore {
			break
		}
	}
	if pages < 2 || seen != 8 {
		t.Fatalf("the first sync took %d pages and brought %d live customers, want several pages and 8", pages, seen)
	}
}
