package api_test

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fieldcrm/fieldcrm/internal/testenv"
)

// fuzzTenant is one tenant, its admin and a device of the admin's, built for
// the first input a fuzz worker runs and reused by the rest: a new database
// per input would cost far more than the request under test.
type fuzzTenant struct {
	base *harness
	snap *snapshots
	// stored is the database as the last refused input left it, which the
	// next input starts from; nil after anything else.
	stored map[string]string
	admin  account
	phone  device
	// customer and order are records for updates and rows to name.
	customer, order string
	// records holds a record of each collection a write route names in its
	// path, by collection.
	records map[string]string
	fresh   int
}

func newFuzzTenant(f *testing.F) func(t *testing.T) (*harness, *fuzzTenant) {
	cfg := defaultHarnessConfig()
	// Generated sign-ins fail by the thousand from one address; the limits
	// have tests of their own.
	cfg.loginIPMax, cfg.refreshMax, cfg.signupMax = math.MaxInt32, math.MaxInt32, math.MaxInt32
	base := buildHarness(f, env.Store(f), env.Redis(f), testenv.NewClock(time.Now().UTC()), cfg)
	snap := newSnapshots(f, base)
	var ft *fuzzTenant
	return func(t *testing.T) (*harness, *fuzzTenant) {
		h := base.with(t)
		if ft == nil {
			admin := h.signup("Fuzz", "admin@fuzz.test")
			customer := h.newCustomer(admin, map[string]any{"name": "Stays"})["id"].(string)
			order := h.call("POST", "/v1/orders", admin, map[string]any{"customer_id": customer, "currency": "CNY",
				"items": []any{map[string]any{"product": "Pump", "quantity": 2, "unit_price": 50000}}}, 201)["id"].(string)
			fx := newFixtures(t, h)
			records := map[string]string{"users": h.createUser(admin, "rep@fuzz.test", "rep", h.createTeam(admin, "Fuzzers", "")).id}
			for coll, maker := range fx.records() {
				records[coll], _, _ = maker(admin)
			}
			records["conflicts"], _, _ = fx.conflict(admin)
			records["notifications"] = fx.notification(admin, admin.tenant)
			ft = &fuzzTenant{base: base, snap: snap, admin: admin, phone: *h.device(admin, "fuzz-phone"),
				customer: customer, order: order, records: records}
		}
		ft.phone.h = h
		return h, ft
	}
}

// nextID is an id no record of the tenant has yet.
func (ft *fuzzTenant) nextID(prefix string) string {
	ft.fresh++
	return prefix + strconv.Itoa(ft.fresh) + "x" + strconv.FormatInt(time.Now().UnixNano(), 36)
}

// exists reports whether a record of table has id.
func (ft *fuzzTenant) exists(h *harness, table, id string) bool {
	h.t.Helper()
	r := h.do("GET", "/v1/"+table+"/"+url.PathEscape(id), ft.admin.access, nil)
	if r.status >= 500 {
		h.t.Fatalf("GET %s %q: %d %s", table, id, r.status, r.body)
	}
	return r.status == 200
}

// before returns the stored documents before an input's request: those the
// last refused input left, or a new snapshot. Until unchanged confirms that
// this input changed nothing, the next one takes a snapshot of its own.
func (ft *fuzzTenant) before(t *testing.T) map[string]string {
	t.Helper()
	docs := ft.stored
	if docs == nil {
		docs = ft.snap.take(t)
	}
	ft.stored = nil
	return docs
}

// unchanged fails t unless the tenant's stored documents are as before and
// no tenant, user or session was added to the database.
func (ft *fuzzTenant) unchanged(t *testing.T, before map[string]string, what string) {
	t.Helper()
	after := ft.snap.take(t)
	if changed := changedDocuments(tenantDocs(before, ft.admin.tenant), tenantDocs(after, ft.admin.tenant)); len(changed) > 0 {
		t.Fatalf("%s, but the tenant's documents changed: %v", what, changed)
	}
	for key := range after {
		coll, _, _ := strings.Cut(key, "/")
		if _, had := before[key]; !had && slices.Contains([]string{"tenants", "users", "sessions", "refresh_tokens"}, coll) {
			t.Fatalf("%s, but %s was added", what, key)
		}
	}
	ft.stored = after
}

// fuzzTables are the tables a device writes (those of the sync schema with
// a column that is not read-only: FuzzPush checks), each with a valid row: a
// new record's, parents the tenant's customer and order; for the inbox, to
// which only the server adds, an update of the tenant's notification. The
// first two keep their place: seeds name tables by index.
var fuzzTables = []fuzzTable{
	{name: "customers", row: func(*fuzzTenant, float64) map[string]any { return map[string]any{"name": "Fuzz", "kind": "company"} }},
	{name: "interactions", row: func(ft *fuzzTenant, now float64) map[string]any {
		return map[string]any{"customer_id": ft.customer, "channel": "visit", "occurred_at": now, "content": "fuzz"}
	}},
	{name: "contacts", row: func(ft *fuzzTenant, _ float64) map[string]any {
		return map[string]any{"customer_id": ft.customer, "name": "Li Na", "title": "Buyer"}
	}},
	{name: "tasks", row: func(ft *fuzzTenant, now float64) map[string]any {
		return map[string]any{"customer_id": ft.customer, "title": "Call back", "due_at": now + 3*86400000}
	}},
	{name: "orders", row: func(ft *fuzzTenant, _ float64) map[string]any {
		return map[string]any{"customer_id": ft.customer, "ordered_on": "2026-11-20", "payment_term_days": 30,
			"items": `[{"product":"Pump","quantity":1,"unit_price":12500}]`}
	}},
	// A payment of one cent: the order's 1,000 yuan take 100,000 of them.
	{name: "payments", row: func(ft *fuzzTenant, now float64) map[string]any {
		return map[string]any{"order_id": ft.order, "method": "cash", "amount": 1, "paid_at": now}
	}},
	{name: "tickets", row: func(ft *fuzzTenant, _ float64) map[string]any {
		return map[string]any{"customer_id": ft.customer, "type": "repair", "priority": "high", "title": "Pump leaks"}
	}},
	{name: "surveys", row: func(ft *fuzzTenant, now float64) map[string]any {
		return map[string]any{"customer_id": ft.customer, "taken_at": now, "csat": 4, "nps": 9}
	}},
	{name: "loyalty_entries", row: func(ft *fuzzTenant, _ float64) map[string]any {
		return map[string]any{"customer_id": ft.customer, "kind": "earn", "points": 10, "reason": "visit"}
	}},
	{name: "notifications", row: func(_ *fuzzTenant, now float64) map[string]any { return map[string]any{"read_at": now} }, inbox: true},
}

// fuzzTable is a table a device writes, and how to make a valid row of it
// (its id aside).
type fuzzTable struct {
	name string
	row  func(ft *fuzzTenant, now float64) map[string]any
	// inbox says only the server adds records: a valid row updates the
	// tenant's record of the table.
	inbox bool
}

// checkFuzzTables fails t unless fuzzTables lists every table of the sync
// schema a device writes, and each valid row is accepted.
func checkFuzzTables(t *testing.T, h *harness, ft *fuzzTenant) {
	t.Helper()
	var schema struct {
		Tables []struct {
			Name    string
			Columns []struct {
				ReadOnly bool `json:"readOnly"`
			}
		}
	}
	if err := json.Unmarshal(h.do("GET", "/v1/sync/schema", ft.admin.access, nil).body, &schema); err != nil {
		t.Fatal(err)
	}
	for _, table := range schema.Tables {
		writable := false
		for _, c := range table.Columns {
			writable = writable || !c.ReadOnly
		}
		if listed := slices.ContainsFunc(fuzzTables, func(ft fuzzTable) bool { return ft.name == table.Name }); writable != listed {
			t.Fatalf("table %s: a device writes it: %v; FuzzPush's fuzzTables list it: %v", table.Name, writable, listed)
		}
	}
	changes := map[string]any{}
	for _, tbl := range fuzzTables {
		row := tbl.row(ft, float64(h.clock.Now().UnixMilli()))
		row["id"] = ft.nextID("valid")
		what := "created"
		if tbl.inbox {
			row["id"], row["_status"], what = ft.records[tbl.name], "updated", "updated"
		}
		changes[tbl.name] = map[string]any{what: []any{row}}
	}
	res := ft.phone.push(changes, 200)
	if rejected, _ := res["rejected"].(map[string]any); len(rejected) > 0 {
		t.Fatalf("FuzzPush's valid rows were refused: %v", rejected)
	}
}

// FuzzPush sends a push of one valid new customer and one row of any table a
// device writes, made from a valid one with the fuzzer's values (any column,
// value of any JSON type, _changed, id; created, updated — the tenant's
// record of the table unless the id is fuzzed — or deleted). Whatever the row: the answer is 200 or 4xx,
// never 5xx; after a 4xx nothing of the push is stored; in a 200 the valid
// customer is accepted (a row refused is refused alone), every accepted new
// record is stored and every rejected one is not.
func FuzzPush(f *testing.F) {
	f.Add(uint8(0), uint8(0), "name", "张伟", 0.0, uint8(0), "", "")
	f.Add(uint8(0), uint8(0), "phones", `[{"number":"0 0000 0000"}]`, 0.0, uint8(0), "", "")
	f.Add(uint8(0), uint8(1), "credit_limit", "", 0.0, uint8(3), "credit_limit", "")
	f.Add(uint8(0), uint8(0), "name", "", 5.0, uint8(1), "", "")
	f.Add(uint8(0), uint8(0), "phones", "[{", 0.0, uint8(0), "", "")
	f.Add(uint8(0), uint8(2), "", "", 0.0, uint8(0), "", "has space")
	f.Add(uint8(0), uint8(1), "name", "N", 0.0, uint8(0), "name,nickname", "")
	f.Add(uint8(1), uint8(0), "occurred_at", "", 1e300, uint8(1), "", "")
	f.Add(uint8(1), uint8(0), "customer_id", "nobody", 0.0, uint8(0), "", "")
	f.Add(uint8(0), uint8(0), "tags", `{"a":1}`, 0.0, uint8(4), "", "")
	f.Add(uint8(0), uint8(0), "name", "", 0.0, uint8(5), "", "")
	// The other tables, by their index in fuzzTables.
	f.Add(uint8(2), uint8(0), "customer_id", "", 0.0, uint8(5), "", "")
	f.Add(uint8(2), uint8(1), "name", "", 0.0, uint8(0), "name", "")
	f.Add(uint8(3), uint8(0), "due_at", "", 1e300, uint8(1), "", "")
	f.Add(uint8(3), uint8(1), "assignee_id", "nobody", 0.0, uint8(0), "assignee_id", "")
	f.Add(uint8(4), uint8(0), "items", "[{", 0.0, uint8(0), "", "")
	f.Add(uint8(4), uint8(1), "items", `[{"product":"Pump","quantity":-1,"unit_price":1}]`, 0.0, uint8(0), "items", "")
	f.Add(uint8(5), uint8(0), "amount", "", 1e300, uint8(1), "", "")
	f.Add(uint8(5), uint8(0), "order_id", "nobody", 0.0, uint8(0), "", "")
	f.Add(uint8(5), uint8(1), "amount", "", -1.0, uint8(1), "amount", "")
	f.Add(uint8(6), uint8(0), "priority", "whenever", 0.0, uint8(0), "", "")
	f.Add(uint8(7), uint8(0), "csat", "", 11.0, uint8(1), "", "")
	f.Add(uint8(8), uint8(1), "points", "", 5.0, uint8(1), "points", "")
	f.Add(uint8(8), uint8(2), "", "", 0.0, uint8(0), "", "")
	f.Add(uint8(9), uint8(1), "read_at", "", 1e300, uint8(1), "read_at", "")
	f.Add(uint8(9), uint8(0), "read_at", "", 0.0, uint8(3), "", "")
	tenant := newFuzzTenant(f)
	checked := false
	f.Fuzz(func(t *testing.T, table, kind uint8, field, value string, num float64, typ uint8, changed, id string) {
		h, ft := tenant(t)
		if !checked {
			checkFuzzTables(t, h, ft)
			checked = true
		}
		base := fuzzTables[int(table)%len(fuzzTables)]
		tbl := base.name
		good := ft.nextID("good")
		fuzzedID := id != ""
		if !fuzzedID {
			id = ft.nextID("row")
		}
		row := base.row(ft, float64(h.clock.Now().UnixMilli()))
		row["id"] = id
		switch typ % 6 {
		case 0:
			row[field] = value
		case 1:
			if math.IsNaN(num) || math.IsInf(num, 0) {
				return // JSON has no such number
			}
			row[field] = num
		case 2:
			row[field] = num > 0
		case 3:
			row[field] = nil
		case 4:
			var v any
			if json.Unmarshal([]byte(value), &v) != nil {
				return
			}
			row[field] = v
		case 5:
			delete(row, field)
		}
		if changed != "" {
			row["_changed"] = changed
		}
		changes := map[string]map[string][]any{
			"customers": {"created": {map[string]any{"id": good, "name": "Valid " + good}}},
		}
		tc := changes[tbl]
		if tc == nil {
			tc = map[string][]any{}
			changes[tbl] = tc
		}
		created := false
		switch kind % 3 {
		case 0:
			tc["created"] = append(tc["created"], row)
			created = true
		case 1:
			if !fuzzedID {
				row["id"] = ft.records[tbl]
			}
			row["_status"] = "updated"
			tc["updated"] = append(tc["updated"], row)
		case 2:
			tc["deleted"] = append(tc["deleted"], id)
		}
		body, err := json.Marshal(map[string]any{"changes": changes})
		if err != nil {
			return
		}
		rowID, _ := row["id"].(string)
		existed := created && ft.exists(h, tbl, rowID)
		before := ft.before(t)
		r := h.do("POST", "/v1/sync/push?last_pulled_at="+ft.phone.cursor, ft.phone.as.access, body)
		switch {
		case r.status >= 500 || r.status < 200 || (r.status >= 300 && r.status < 400) || (r.status > 200 && r.status < 300):
			t.Fatalf("push %s: status %d %s", body, r.status, r.body)
		case r.status >= 400:
			ft.unchanged(t, before, fmt.Sprintf("push %s refused with %d %s", body, r.status, r.body))
			if ft.exists(h, "customers", good) || (created && !existed && ft.exists(h, tbl, rowID)) {
				t.Fatalf("push %s refused with %d %s, but stored part of it", body, r.status, r.body)
			}
			return
		}
		var res struct {
			Accepted map[string][]string `json:"accepted"`
			Rejected map[string][]struct {
				ID     string `json:"id"`
				Reason string `json:"reason"`
			} `json:"rejected"`
		}
		if err := json.Unmarshal(r.body, &res); err != nil {
			t.Fatalf("push %s: answer %s: %v", body, r.body, err)
		}
		if rowID != good && !slices.Contains(res.Accepted["customers"], good) {
			t.Fatalf("push %s: the valid customer was not accepted alone: %s", body, r.body)
		}
		for tname, accepted := range res.Accepted {
			for _, aid := range accepted {
				if (aid == good || (created && aid == rowID)) && !ft.exists(h, tname, aid) {
					t.Fatalf("push %s: %s %s accepted but not stored: %s", body, tname, aid, r.body)
				}
			}
		}
		for tname, rejected := range res.Rejected {
			for _, rj := range rejected {
				if created && rj.ID == rowID && !existed && ft.exists(h, tname, rj.ID) {
					t.Fatalf("push %s: %s %s rejected (%s) but stored", body, tname, rj.ID, rj.Reason)
				}
			}
		}
	})
}

// FuzzWriteRoutes sends any body to every JSON write route of the API (from
// its OpenAPI document), as the tenant's admin, and to sign-up, sign-in and
// refresh, with no token. The answer is never a 5xx; after a 4xx none of
// the tenant's stored documents changed, and no tenant, user or session was
// added. The fuzzer's first string names the route as the OpenAPI document
// does ("POST /v1/customers/{id}/merge"); any other string picks one by its
// hash.
func FuzzWriteRoutes(f *testing.F) {
	for i, s := range []string{
		`{"name":"A","phones":[{"number":"0 0000 0000"}]}`, `{"name":"B","birthday":"2026-02-30"}`, `null`, `[]`, `{"name":1}`,
		`{"name":"C"} {}`, `{"customer_id":"x","channel":"visit"}`, `{"nope":1}`, `{"name":"\ud800"}`, `{"due_at":"yesterday"}`, ``,
	} {
		for j := range 8 {
			f.Add(strconv.Itoa(8*i+j), s)
		}
	}
	// Bodies each route accepts or refuses, so that the fuzzer starts from
	// both sides of each rule.
	for route, bodies := range map[string][]string{
		"POST /v1/customers":             {`{"name":"Seeded","kind":"company"}`},
		"PATCH /v1/customers/{id}":       {`{"title":"Seeded"}`, `{"kind":"robot"}`},
		"PATCH /v1/contacts/{id}":        {`{"name":"Seeded"}`, `{"name":""}`},
		"POST /v1/tickets/{id}/comments": {`{"body":"Seeded"}`, `{"body":""}`},
		"POST /v1/auth/signup": {`{"company_name":"Seeded","name":"N","email":"seeded@fuzz.test","password":"` + testPassword + `"}`,
			`{"company_name":"","name":"N","email":"new@fuzz.test","password":"` + testPassword + `"}`,
			`{"company_name":"Acme","name":"N","email":"admin@fuzz.test","password":"` + testPassword + `"}`,
			`{"company_name":"Acme","name":"N","email":"not an address","password":"` + testPassword + `"}`,
			`{"company_name":"Acme","name":"N","email":"short@fuzz.test","password":"x"}`, `{"email":null}`},
		"POST /v1/auth/login": {`{"email":"admin@fuzz.test","password":"wrong","device_id":"d"}`,
			`{"email":"admin@fuzz.test","password":"` + testPassword + `","device_id":"seeded-phone"}`, `{"email":"nobody@fuzz.test","password":"x"}`, `{"email":[]}`},
		"POST /v1/auth/refresh":           {`{"refresh_token":"nope"}`, `{"refresh_token":""}`, `{"refresh_token":1}`},
		"POST /v1/customers/{id}/merge":   {`{"from":["nobody"]}`, `{"from":[]}`, `{"from":"x"}`},
		"POST /v1/conflicts/{id}/resolve": {`{"action":"nope"}`, `{"action":"revert","value":1}`},
		"PATCH /v1/users/{id}":            {`{"role":"owner"}`, `{"team_id":"nope"}`, `{"time_zone":"Mars/Base"}`},
		"PATCH /v1/payments/{id}":         {`{"amount":-1}`, `{"amount":1e300}`},
		"PATCH /v1/tasks/{id}":            {`{"due_at":1e300}`, `{"assignee_id":"nobody"}`},
		"PATCH /v1/orders/{id}":           {`{"items":"[{"}`, `{"items":[{"quantity":-1}]}`},
	} {
		for _, body := range bodies {
			f.Add(route, body)
		}
	}
	tenant := newFuzzTenant(f)
	var routes []writeRoute
	f.Fuzz(func(t *testing.T, route, body string) {
		h, ft := tenant(t)
		if routes == nil {
			routes = writeRoutes(h, ft)
		}
		i := slices.IndexFunc(routes, func(r writeRoute) bool { return r.name == route })
		if i < 0 {
			sum := fnv.New32a()
			sum.Write([]byte(route))
			i = int(sum.Sum32() % uint32(len(routes)))
		}
		method, path := routes[i].method, routes[i].path
		token := ft.admin.access
		if strings.HasPrefix(path, "/v1/auth/") {
			token = ""
		}
		before := ft.before(t)
		r := h.do(method, path, token, body)
		if r.status >= 500 {
			t.Fatalf("%s %s %s: status %d %s", method, path, body, r.status, r.body)
		}
		if r.status >= 400 {
			ft.unchanged(t, before, fmt.Sprintf("%s %s %s refused with %d %s", method, path, body, r.status, r.body))
		}
	})
}

// writeRoute is a route to send generated bodies to: its name in the
// OpenAPI document ("POST /v1/customers/{id}/merge"), and the method and
// path to call.
type writeRoute struct{ name, method, path string }

// writeRoutes lists every route that takes a JSON body, sign-up, sign-in
// and refresh among them, each path parameter filled with the tenant's
// record of the route's collection (the path's first segment). The push
// (FuzzPush), imports (multipart) and the routes that would leave the tenant
// unusable for the next inputs (erasure, logout) are left out.
func writeRoutes(h *harness, ft *fuzzTenant) []writeRoute {
	h.t.Helper()
	var doc struct {
		Paths map[string]map[string]struct {
			RequestBody *struct {
				Content map[string]any `json:"content"`
			} `json:"requestBody"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(h.do("GET", "/v1/openapi.json", "", nil).body, &doc); err != nil {
		h.t.Fatal(err)
	}
	signIn := []string{"/v1/auth/signup", "/v1/auth/login", "/v1/auth/refresh"}
	var out []writeRoute
	for path, ops := range doc.Paths {
		if strings.HasPrefix(path, "/v1/auth/") && !slices.Contains(signIn, path) || strings.HasPrefix(path, "/v1/sync/push") ||
			strings.HasPrefix(path, "/v1/imports") || strings.HasSuffix(path, "/erase") {
			continue
		}
		for method, op := range ops {
			if op.RequestBody == nil || op.RequestBody.Content["application/json"] == nil {
				continue
			}
			p := path
			if i := strings.Index(p, "{"); i >= 0 {
				coll, _, _ := strings.Cut(strings.TrimPrefix(p, "/v1/"), "/")
				id, ok := ft.records[coll]
				if !ok {
					h.t.Fatalf("%s %s: the fuzz tenant has no record of %s; add one", method, path, coll)
				}
				j := strings.Index(p[i:], "}")
				p = p[:i] + url.PathEscape(id) + p[i+j+1:]
			}
			if strings.Contains(p, "{") {
				h.t.Fatalf("%s %s: more than one path parameter", method, path)
			}
			method = strings.ToUpper(method)
			out = append(out, writeRoute{name: method + " " + path, method: method, path: p})
		}
	}
	slices.SortFunc(out, func(a, b writeRoute) int { return strings.Compare(a.name, b.name) })
	for _, p := range signIn {
		if !slices.ContainsFunc(out, func(r writeRoute) bool { return r.name == "POST "+p }) {
			h.t.Fatalf("the OpenAPI document has no JSON route POST %s", p)
		}
	}
	if len(out) < 20 {
		h.t.Fatalf("the OpenAPI document lists only %v as JSON write routes", out)
	}
	return out
}
