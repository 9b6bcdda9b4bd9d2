package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fieldcrm/fieldcrm/models"
	"github.com/fieldcrm/fieldcrm/sync/watermelon"
)

// pullAll pulls from cursor until has_more is false and returns every change by
// table and kind ("customers/created" → ids), the records by id, and the final cursor.
func (h *harness) pullAll(as account, cursor string) (map[string][]string, map[string]map[string]any, string) {
	h.t.Helper()
	return h.pullMigrating(as, cursor, "null")
}

// pullMigrating is pullAll whose first page carries a WatermelonDB migration
// (JSON, or "null"), as synchronize() sends it once after a schema migration.
func (h *harness) pullMigrating(as account, cursor, migration string) (map[string][]string, map[string]map[string]any, string) {
	h.t.Helper()
	kinds := map[string][]string{}
	records := map[string]map[string]any{}
	for pages := 0; ; pages++ {
		if pages > 100 {
			h.t.Fatal("pull never ends")
		}
		r := h.do("GET", "/v1/sync/pull?last_pulled_at="+cursor+"&schema_version=1&migration="+url.QueryEscape(migration), as.access, nil)
		h.expect(r, 200, "pull")
		migration = "null"
		var body struct {
			Changes map[string]struct {
				Created []map[string]any `json:"created"`
				Updated []map[string]any `json:"updated"`
				Deleted []string         `json:"deleted"`
			} `json:"changes"`
			Timestamp int64 `json:"timestamp"`
			HasMore   bool  `json:"has_more"`
		}
		if err := json.Unmarshal(r.body, &body); err != nil {
			h.t.Fatal(err)
		}
		if r.header.Get("X-Sync-Has-More") != strconv.FormatBool(body.HasMore) {
			h.t.Fatalf("header %q, body has_more %v", r.header.Get("X-Sync-Has-More"), body.HasMore)
		}
		if prev, _ := strconv.ParseInt(cursor, 10, 64); (body.Timestamp < prev && migration == "null" && pages > 0) || body.Timestamp == 0 {
			h.t.Fatalf("timestamp %d after %s", body.Timestamp, cursor)
		}
		for table, tc := range body.Changes {
			for _, rec := range tc.Created {
				kinds[table+"/created"] = append(kinds[table+"/created"], rec["id"].(string))
				records[rec["id"].(string)] = rec
			}
			for _, rec := range tc.Updated {
				kinds[table+"/updated"] = append(kinds[table+"/updated"], rec["id"].(string))
				records[rec["id"].(string)] = rec
			}
			kinds[table+"/deleted"] = append(kinds[table+"/deleted"], tc.Deleted...)
		}
		cursor = strconv.FormatInt(body.Timestamp, 10)
		if !body.HasMore {
			break
		}
	}
	for k := range kinds {
		slices.Sort(kinds[k])
		if len(kinds[k]) == 0 {
			delete(kinds, k)
		}
	}
	return kinds, records, cursor
}

func TestFirstPullPagesThroughEverythingTheUserMaySee(t *testing.T) {
	w := newWorld(t)
	h := w.h
	var mine, theirs []string
	for i := range 10 {
		mine = append(mine, h.newCustomer(w.r1, map[string]any{"name": fmt.Sprint("Mine ", i),
			"phones": []any{map[string]any{"number": fmt.Sprintf("1380013%04d", i)}}})["id"].(string))
	}
	var calls []string
	for i := range 5 {
		calls = append(calls, h.call("POST", "/v1/interactions", w.r1, map[string]any{"customer_id": mine[i], "channel": "phone"}, 201)["id"].(string))
	}
	for i := range 3 {
		theirs = append(theirs, h.newCustomer(w.r2, map[string]any{"name": fmt.Sprint("Theirs ", i)})["id"].(string))
	}
	kinds, records, _ := h.pullAll(w.r1, "null")
	slices.Sort(mine)
	slices.Sort(calls)
	// Every page of a first sync reports records as created, also a customer
	// changed after the first page's cursor (its last_interaction_at).
	if !slices.Equal(kinds["customers/created"], mine) || !slices.Equal(kinds["interactions/created"], calls) || len(kinds) != 2 {
		t.Fatalf("first pull: %v", kinds)
	}
	rec := records[mine[0]]
	var phones []map[string]any
	if err := json.Unmarshal([]byte(rec["phones"].(string)), &phones); err != nil || len(phones) != 1 {
		t.Fatalf("phones column %v", rec["phones"])
	}
	if _, isNumber := rec["server_created_at"].(float64); !isNumber || rec["number"] == "" || rec["deleted_at"] != nil {
		t.Fatalf("flat record %v", rec)
	}
	// The manager sees both reps of their team but not the other team.
	mk, _, _ := h.pullAll(w.m1, "null")
	if n := len(mk["customers/created"]); n != 10 || len(mk["customers/updated"]) != 0 {
		t.Fatalf("manager pulled %d customers", n)
	}
}

func TestDeltaPullReturnsEditsDeletesAndLostAccess(t *testing.T) {
	w := newWorld(t)
	h := w.h
	a := h.newCustomer(w.r1, map[string]any{"name": "A"})["id"].(string)
	b := h.newCustomer(w.r1, map[string]any{"name": "B"})["id"].(string)
	d := h.newCustomer(w.r1, map[string]any{"name": "D"})["id"].(string)
	call := h.call("POST", "/v1/interactions", w.r1, map[string]any{"customer_id": d, "channel": "visit"}, 201)["id"].(string)
	_, _, cursor := h.pullAll(w.r1, "null")

	// Nothing changed: the same cursor, nothing in it.
	if kinds, _, again := h.pullAll(w.r1, cursor); len(kinds) != 0 || again != cursor {
		t.Fatalf("no-op pull: %v, %s → %s", kinds, cursor, again)
	}
	h.call("PATCH", "/v1/customers/"+a, w.r1, map[string]any{"industry": "retail"}, 200)
	h.call("DELETE", "/v1/customers/"+b, w.r1, nil, 204)
	c := h.newCustomer(w.r1, map[string]any{"name": "C"})["id"].(string)
	h.call("POST", "/v1/customers/"+d+"/assign", w.m1, map[string]any{"owner_id": w.r1b.id}, 200)
	kinds, records, next := h.pullAll(w.r1, cursor)
	want := map[string][]string{
		"customers/updated":    {a},
		"customers/created":    {c},
		"customers/deleted":    sorted(b, d),
		"interactions/deleted": {call},
	}
	if fmt.Sprint(kinds) != fmt.Sprint(want) {
		t.Fatalf("delta pull\n got %v\nwant %v", kinds, want)
	}
	if n1, n2 := atoi(cursor), atoi(next); records[a]["industry"] != "retail" || n2 <= n1 {
		t.Fatalf("updated record %v, cursor %s → %s", records[a], cursor, next)
	}
	// The new owner's first pull brings the customer and its visit.
	k2, _, _ := h.pullAll(w.r1b, "null")
	if !slices.Contains(k2["customers/created"], d) || !slices.Contains(k2["interactions/created"], call) {
		t.Fatalf("new owner pulled %v", k2)
	}
}

// After the app's schema gained a table and a column, its next pull carries
// WatermelonDB's migration: the server sends every record of the new table as
// created and every record of the table with the new column in full (as
// updated: the device has them), besides the ordinary changes since its cursor,
// across pages, with nothing deleted twice.
func TestMigrationPullSendsTheGainedTablesAndColumnsInFull(t *testing.T) {
	w := newWorld(t)
	h := w.h
	var customers, tasks []string
	due := time.Now().Add(48 * time.Hour).UTC().Format(time.RFC3339)
	for i := range 9 {
		id := h.newCustomer(w.r1, map[string]any{"name": fmt.Sprint("Old ", i), "phones": []any{map[string]any{"number": fmt.Sprintf("1390013%04d", i)}}})["id"].(string)
		customers = append(customers, id)
		tasks = append(tasks, h.call("POST", "/v1/tasks", w.r1, map[string]any{"customer_id": id, "title": fmt.Sprint("Visit ", i), "due_at": due}, 201)["id"].(string))
	}
	gone := h.newCustomer(w.r1, map[string]any{"name": "Gone soon"})["id"].(string)
	h.call("DELETE", "/v1/customers/"+gone, w.r1, nil, 204)
	_, _, cursor := h.pullAll(w.r1, "null")
	later := h.call("POST", "/v1/interactions", w.r1, map[string]any{"customer_id": customers[0], "channel": "phone"}, 201)["id"].(string)

	mig := `{"from":1,"tables":["tasks"],"columns":[{"table":"customers","columns":["industry"]}]}`
	kinds, _, next := h.pullMigrating(w.r1, cursor, mig)
	slices.Sort(customers)
	slices.Sort(tasks)
	if !slices.Equal(kinds["tasks/created"], tasks) || !slices.Equal(kinds["customers/updated"], customers) {
		t.Fatalf("migration pull: %v", kinds)
	}
	if !slices.Equal(kinds["interactions/created"], []string{later}) || len(kinds["customers/deleted"]) > 0 || len(kinds["customers/created"]) > 0 {
		t.Fatalf("migration pull beyond the migrated tables: %v", kinds)
	}
	if after, _, _ := h.pullAll(w.r1, next); len(after) > 0 {
		t.Fatalf("pull after the migration: %v", after)
	}
	for _, bad := range []string{`{"tables":["tasks"]}`, `{"from":"one"}`, `[1]`} {
		h.call("GET", "/v1/sync/pull?last_pulled_at="+cursor+"&migration="+url.QueryEscape(bad), w.r1, nil, 422)
	}
}

func TestPullRejectsBadCursorsAndSchemas(t *testing.T) {
	w := newWorld(t)
	h := w.h
	h.newCustomer(w.r1, map[string]any{"name": "A"})
	_, _, cursor := h.pullAll(w.r1, "null")
	n, _ := strconv.ParseInt(cursor, 10, 64)
	for _, q := range []string{
		"last_pulled_at=-1", "last_pulled_at=yesterday",
		"schema_version=99", "schema_version=x", "migration=%7Bnot-json",
	} {
		h.call("GET", "/v1/sync/pull?"+q, w.r1, nil, 422)
	}
	// A cursor ahead of the tenant's changes comes from a database since
	// restored, or from another server or tenant: the device must resync.
	for _, who := range []account{w.r1, w.adminB} {
		p := h.call("GET", "/v1/sync/pull?last_pulled_at="+strconv.FormatInt(n+1000, 10), who, nil, 410)
		if p["type"] != "/problems/resync-required" {
			t.Fatalf("cursor ahead: %v", p)
		}
	}
	h.call("GET", "/v1/sync/pull?last_pulled_at="+cursor, w.adminB, nil, 410)
}

func TestSchemaListsSyncedTablesWithWatermelonTypes(t *testing.T) {
	h := newHarness(t)
	admin := h.signup("Acme", "admin@schema.test")
	s := h.call("GET", "/v1/sync/schema", admin, nil, 200)
	if s["version"] != 4.0 {
		t.Fatalf("version %v", s["version"])
	}
	cols := map[string]map[string]any{}
	var tables []string
	for _, tb := range s["tables"].([]any) {
		tm := tb.(map[string]any)
		tables = append(tables, tm["name"].(string))
		if tm["name"] == "customers" {
			for _, c := range tm["columns"].([]any) {
				cm := c.(map[string]any)
				cols[cm["name"].(string)] = cm
			}
		}
	}
	want := []string{"customers", "contacts", "interactions", "tasks", "orders", "payments", "tickets", "surveys", "loyalty_entries", "conflicts", "notifications"}
	if !slices.Equal(tables, want) {
		t.Fatalf("tables %v", tables)
	}
	check := func(name, typ string, flags ...string) {
		c := cols[name]
		if c == nil || c["type"] != typ {
			t.Errorf("column %s: %v, want type %s", name, c, typ)
			return
		}
		for _, f := range flags {
			if c[f] != true {
				t.Errorf("column %s lacks %s: %v", name, f, c)
			}
		}
	}
	check("name", "string")
	check("phones", "string", "json")
	check("server_created_at", "number", "time", "readOnly")
	check("last_interaction_at", "number", "time", "isOptional")
	check("credit_limit", "number")
	check("number", "string", "readOnly", "isIndexed")
	check("owner_id", "string", "readOnly", "isIndexed")
	check("name", "string", "required")
	if enum, _ := cols["kind"]["enum"].([]any); len(enum) != len(models.CustomerKinds) {
		t.Errorf("column kind: enum %v, want %v", cols["kind"]["enum"], models.CustomerKinds)
	}
	if shape, _ := cols["phones"]["jsonSchema"].(map[string]any); shape["items"] == nil {
		t.Errorf("column phones: jsonSchema %v, want a list's", cols["phones"]["jsonSchema"])
	}
	if cols["id"] != nil || cols["deleted_at"] != nil || cols["national_id_sealed"] != nil {
		t.Error("id, deleted_at or a server-only field is a column")
	}
}

// Writers create records through two API replicas (sharing the database and
// Redis) while a device pulls again and again, alternating replicas: when the
// writers stop, the device has received every record, though numbers were
// taken before their writes committed and committed out of order.
func TestConcurrentWritesAndPullsMissNothing(t *testing.T) {
	w := newWorld(t)
	h := w.h
	replicas := []*harness{h, h.twin()}
	cust := h.newCustomer(w.r1, map[string]any{"name": "Busy"})["id"].(string)
	_, _, cursor := h.pullAll(w.r1, "null")
	const writers, each = 4, 8
	created := make(chan string, writers*each)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range each {
				r := replicas[(i+j)%2].do("POST", "/v1/interactions", w.r1.access, map[string]any{"customer_id": cust, "channel": "phone", "content": fmt.Sprint(i, "/", j)})
				if r.status != 201 {
					t.Errorf("create: %d %s", r.status, r.body)
					return
				}
				var m map[string]any
				_ = json.Unmarshal(r.body, &m)
				created <- m["id"].(string)
			}
		}()
	}
	seen := map[string]bool{}
	stop := make(chan struct{})
	pulled := make(chan struct{})
	go func() {
		defer close(pulled)
		for round := 0; ; round++ {
			kinds, _, next := replicas[round%2].pullAll(w.r1, cursor)
			for _, id := range kinds["interactions/created"] {
				seen[id] = true
			}
			cursor = next
			select {
			case <-stop:
				return
			default:
			}
		}
	}()
	wg.Wait()
	close(stop)
	<-pulled
	kinds, _, _ := h.pullAll(w.r1, cursor) // the writes have all finished now
	for _, id := range kinds["interactions/created"] {
		seen[id] = true
	}
	close(created)
	for id := range created {
		if !seen[id] {
			t.Errorf("interaction %s was never pulled", id)
		}
	}
}

func atoi(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

// Deletions are kept for a retention period; a device offline for longer is
// told to start over (410) instead of keeping records deleted long ago.
func TestPurgedTombstonesMakeOldCursorsResync(t *testing.T) {
	w := newWorld(t)
	h := w.h
	keep := h.newCustomer(w.r1, map[string]any{"name": "Keep"})["id"].(string)
	gone := h.newCustomer(w.r1, map[string]any{"name": "Gone"})["id"].(string)
	_, _, old := h.pullAll(w.r1, "null")
	h.call("DELETE", "/v1/customers/"+gone, w.r1, nil, 204)
	_, _, recent := h.pullAll(w.r1, old) // this cursor has seen the delete
	n, err := h.sync.Purge(context.Background(), h.clock.Now().Add(time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("purged %d, %v", n, err)
	}
	h.call("GET", "/v1/customers/"+gone, w.r1, nil, 404)
	r := h.do("GET", "/v1/sync/pull?last_pulled_at="+old, w.r1.access, nil)
	h.expect(r, 410, "pull from before the purge")
	if !strings.Contains(string(r.body), "/problems/resync-required") {
		t.Fatalf("problem %s", r.body)
	}
	h.pullAll(w.r1, recent) // saw the delete: fine
	kinds, _, _ := h.pullAll(w.r1, "null")
	if fmt.Sprint(kinds["customers/created"]) != "["+keep+"]" {
		t.Fatalf("fresh sync after purge: %v", kinds)
	}
	// Nothing younger than the retention is purged.
	if n, _ := h.sync.Purge(context.Background(), h.clock.Now().Add(-time.Hour)); n != 0 {
		t.Fatalf("purged %d recent tombstones", n)
	}
}

// GET /v1/sync/models serves what `fieldcrm schema` writes, from the same
// generator: the current version by default, any earlier one by number, a
// version that never was refused with a problem.
func TestSyncModelsAreTheGeneratedDataLayer(t *testing.T) {
	h := newHarness(t)
	rep := h.signup("Acme", "admin@models.test")
	schema := watermelon.CurrentSchema()
	for query, version := range map[string]int{"": schema.Version, "?version=1": 1, "?version=3": 3} {
		got := h.call("GET", "/v1/sync/models"+query, rep, nil, 200)
		want, err := schema.Generate(version)
		if err != nil {
			t.Fatal(err)
		}
		if got["schema_version"] != float64(version) {
			t.Errorf("%q: schema_version %v, want %d", query, got["schema_version"], version)
		}
		files := got["files"].(map[string]any)
		if len(files) != len(want) {
			t.Errorf("%q: %d files, want %d", query, len(files), len(want))
		}
		for name, text := range want {
			if files[name] != text {
				t.Errorf("%q: %s differs from the generator's", query, name)
			}
		}
	}
	for _, bad := range []string{"?version=0", "?version=" + strconv.Itoa(schema.Version+1), "?version=two"} {
		h.expect(h.do("GET", "/v1/sync/models"+bad, rep.access, nil), 422, bad)
	}
	h.expect(h.do("GET", "/v1/sync/models", "", nil), 401, "without a token")
}
