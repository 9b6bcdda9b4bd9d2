package api_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/url"
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

// TestWholeFirstSyncIsEveryPageInOne: a first pull with turbo=true is the
// whole first sync in one response (for Turbo Login, which applies only the
// first sync's response): per table, the rows every page of a paged first
// sync brings, byte for byte and in the same order, compressed for a client
// that accepts gzip, and a cursor the device syncs on from. It is for a
// first sync only.
func TestWholeFirstSyncIsEveryPageInOne(t *testing.T) {
	w := newWorld(t)
	h := w.h
	var ids []string
	for i := range 3*testPullPage + 2 {
		ids = append(ids, h.newCustomer(w.r1, map[string]any{"name": fmt.Sprint("Whole ", i)})["id"].(string))
	}
	h.newCustomer(w.r2, map[string]any{"name": "Another team's"})
	h.call("DELETE", "/v1/customers/"+ids[2], w.r1, nil, 204)

	type body struct {
		Changes   map[string]map[string][]json.RawMessage `json:"changes"`
		Timestamp int64                                   `json:"timestamp"`
		HasMore   bool                                    `json:"has_more"`
	}
	paged := map[string][]string{}
	cursor, pages := "null", 0
	var last body
	for {
		r := h.do("GET", "/v1/sync/pull?last_pulled_at="+cursor+"&schema_version=1", w.r1.access, nil)
		h.expect(r, 200, "paged pull")
		last = body{}
		if err := json.Unmarshal(r.body, &last); err != nil {
			t.Fatal(err)
		}
		for table, tc := range last.Changes {
			for _, row := range tc["created"] {
				paged[table] = append(paged[table], string(row))
			}
		}
		cursor, pages = strconv.FormatInt(last.Timestamp, 10), pages+1
		if !last.HasMore {
			break
		}
	}
	if pages < 3 || len(paged["customers"]) != len(ids)-1 {
		t.Fatalf("the paged first sync took %d pages and brought %d customers, want several and %d", pages, len(paged["customers"]), len(ids)-1)
	}

	r := h.do("GET", "/v1/sync/pull?last_pulled_at=null&schema_version=1&turbo=true", w.r1.access, nil, "Accept-Encoding", "gzip")
	h.expect(r, 200, "whole first sync")
	if enc := r.header.Get("Content-Encoding"); enc != "gzip" {
		t.Fatalf("Content-Encoding %q, want gzip", enc)
	}
	zr, err := gzip.NewReader(bytes.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(raw, &keys); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if got := slices.Sorted(maps.Keys(keys)); !slices.Equal(got, []string{"changes", "has_more", "timestamp"}) {
		t.Fatalf("keys %v", got)
	}
	var whole body
	if err := json.Unmarshal(raw, &whole); err != nil {
		t.Fatal(err)
	}
	if whole.HasMore || whole.Timestamp != last.Timestamp {
		t.Fatalf("has_more %v, timestamp %d; want false and the paged sync's last, %d", whole.HasMore, whole.Timestamp, last.Timestamp)
	}
	if got := r.header.Get("X-Sync-Until"); got != strconv.FormatInt(whole.Timestamp, 10) || r.header.Get("X-Sync-Has-More") != "false" {
		t.Fatalf("X-Sync-Until %q, X-Sync-Has-More %q", got, r.header.Get("X-Sync-Has-More"))
	}
	for table, tc := range whole.Changes {
		if len(tc["updated"]) != 0 || len(tc["deleted"]) != 0 {
			t.Fatalf("%s: %d updated, %d deleted; Turbo Login takes created only", table, len(tc["updated"]), len(tc["deleted"]))
		}
		var rows []string
		for _, row := range tc["created"] {
			rows = append(rows, string(row))
		}
		if !slices.Equal(rows, paged[table]) {
			t.Fatalf("%s: the whole sync's rows differ from the pages':\n%v\n---\n%v", table, rows, paged[table])
		}
	}
	if len(whole.Changes) != len(h.call("GET", "/v1/sync/schema", w.r1, nil, 200)["tables"].([]any)) {
		t.Fatalf("%d tables in the whole sync", len(whole.Changes))
	}

	// The device syncs on from the whole sync's timestamp.
	later := h.newCustomer(w.r1, map[string]any{"name": "After the whole sync"})["id"].(string)
	r = h.do("GET", "/v1/sync/pull?last_pulled_at="+strconv.FormatInt(whole.Timestamp, 10)+"&schema_version=1", w.r1.access, nil)
	h.expect(r, 200, "the pull after")
	var next body
	if err := json.Unmarshal(r.body, &next); err != nil {
		t.Fatal(err)
	}
	if c := next.Changes["customers"]; len(c["created"]) != 1 || !bytes.Contains(c["created"][0], []byte(later)) || len(c["updated"])+len(c["deleted"]) != 0 {
		t.Fatalf("the pull after the whole sync: %d created, %d updated, %d deleted; want the new customer created",
			len(c["created"]), len(c["updated"]), len(c["deleted"]))
	}

	for _, bad := range []string{
		"last_pulled_at=null&turbo=yes",
		"last_pulled_at=" + strconv.FormatInt(whole.Timestamp, 10) + "&turbo=true",
		"last_pulled_at=null&turbo=true&migration=" + url.QueryEscape(`{"from":1,"tables":["customers"],"columns":[]}`),
	} {
		r := h.do("GET", "/v1/sync/pull?"+bad, w.r1.access, nil)
		h.expect(r, 422, bad)
		if !bytes.Contains(r.body, []byte(`"turbo"`)) {
			t.Fatalf("%s: the problem does not name turbo: %s", bad, r.body)
		}
	}
	h.expect(h.do("GET", "/v1/sync/pull?last_pulled_at=null&turbo=true", "", nil), 401, "without a token")
}
