package api_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/csv"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"

	"github.com/fieldcrm/fieldcrm/models"
)

// matrixCaller is a user of tenant A the collection matrix calls routes as,
// with what the visibility rule needs to know of them.
type matrixCaller struct {
	role   models.Role
	as     account
	tenant string
	// team is the caller's own team; manages the teams they manage.
	team    string
	manages []string
}

// sees is the visibility rule of docs/api.md, written from the stored
// fields rather than through the server's scope: an admin sees the whole
// tenant, a manager what is owned by them or by their teams, a rep what they
// own; tasks and tickets also their assignee; an inbox only its user; users
// and teams the same way (a manager their teams' users, a rep themselves and
// their team). Deleted records and other tenants' are seen by no list.
func (c matrixCaller) sees(coll string, doc bson.M) bool {
	str := func(k string) string { s, _ := doc[k].(string); return s }
	if str("tenant_id") != c.tenant || doc["deleted_at"] != nil {
		return false
	}
	switch {
	case coll == "users":
		return c.role == models.RoleAdmin || str("_id") == c.as.id || c.role == models.RoleManager && slices.Contains(c.manages, str("team_id"))
	case coll == "teams":
		return c.role == models.RoleAdmin || str("manager_id") == c.as.id || str("_id") == c.team
	case coll == "notifications":
		return str("user_id") == c.as.id
	case c.role == models.RoleAdmin || str("owner_id") == c.as.id:
		return true
	case (coll == "tasks" || coll == "tickets") && str("assignee_id") == c.as.id:
		return true
	}
	return c.role == models.RoleManager && str("team_id") != "" && slices.Contains(c.manages, str("team_id"))
}

// storedDocs returns the documents of a collection.
func storedDocs(t *testing.T, db *mongo.Database, coll string) []bson.M {
	t.Helper()
	cur, err := db.Collection(coll).Find(context.Background(), bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	var out []bson.M
	if err := cur.All(context.Background(), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// visibleIDs are the ids of coll's documents c sees (and keep says to list), sorted.
func visibleIDs(t *testing.T, db *mongo.Database, c matrixCaller, coll string, keep func(bson.M) bool) []string {
	t.Helper()
	var ids []string
	for _, d := range storedDocs(t, db, coll) {
		if c.sees(coll, d) && (keep == nil || keep(d)) {
			ids = append(ids, fmt.Sprint(d["_id"]))
		}
	}
	slices.Sort(ids)
	return ids
}

// listedIDs follows a list's pages (next_after) and returns every id, sorted.
// (An unpaged list takes no parameters and answers everything at once.)
func listedIDs(t *testing.T, h *harness, path string, as account, idField string, unpaged bool) []string {
	t.Helper()
	var ids []string
	after := ""
	for pages := 0; ; pages++ {
		if pages > 50 {
			t.Fatalf("%s never ends", path)
		}
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		p := path + sep + "limit=200"
		if unpaged {
			p = path
		}
		if after != "" {
			p += "&after=" + url.QueryEscape(after)
		}
		r := h.call("GET", p, as, nil, 200)
		data, _ := r["data"].([]any)
		for _, d := range data {
			ids = append(ids, fmt.Sprint(d.(map[string]any)[idField]))
		}
		next, _ := r["next_after"].(string)
		if next == "" {
			break
		}
		after = next
	}
	slices.Sort(ids)
	return ids
}

// tenantDocs returns the documents that belong to tenant: theirs by
// tenant_id, and the tenant's own record.
func tenantDocs(all map[string]string, tenant string) map[string]string {
	out := map[string]string{}
	for k, v := range all {
		if strings.Contains(v, `"tenant_id": "`+tenant+`"`) || strings.Contains(v, `"tenant_id":"`+tenant+`"`) || strings.HasSuffix(k, `/"`+tenant+`"`) {
			out[k] = v
		}
	}
	return out
}

// collectionRoute is how to try one route whose path names no record.
type collectionRoute struct {
	// list routes answer the records the caller sees: coll's documents by
	// the visibility rule (keep narrows them), compared by idField of the
	// answer (default "id"). An unpaged list takes no parameters.
	list    string
	keep    func(bson.M) bool
	idField string
	unpaged bool
	// read routes answer 200 to every caller and change nothing; check, if
	// set, looks at the answer; touches are collections a read may write to
	// (an export's audit entry).
	read    func(c matrixCaller) (path string, check func(r response))
	touches []string
	// admin routes are refused to managers and reps (403, nothing changed);
	// the admin's call is a write.
	admin bool
	// writes are the route's requests as c.
	writes func(c matrixCaller) []collectionWrite
	// own runs a route that fits none of these (sessions, sign-up, an
	// import) and checks what it changed itself.
	own func(callers []matrixCaller)
}

// collectionWrite is one request of a write route. A refusal (a status of
// 300 or more, or a pushed row the server refuses) must change no document;
// a success must create exactly one document in created (if set), which
// check then looks at.
type collectionWrite struct {
	what    string
	path    string
	body    any
	want    int
	created string
	check   func(doc bson.M)
	// send sends the request itself (a device's push); refusedRow is the
	// id of the pushed row the server must refuse.
	send       func() response
	refusedRow string
}

// refusal says the write must change nothing.
func (cw collectionWrite) refusal() bool { return cw.want >= 300 || cw.refusedRow != "" }

// TestEveryCollectionRouteByRole tries every route of the OpenAPI document
// whose path names no record (lists, creates, reports, settings, sync,
// sessions…) as the admin, the manager m1 and the rep r1 of tenant A, with
// records of the rep's own, of their teammate's (the manager's, not the
// rep's), of another team's and of tenant B seeded in every collection:
//
//   - a list answers exactly the records the visibility rule gives the
//     caller (compared by id with the stored documents), never tenant B's;
//   - a create either succeeds and creates exactly one record, in the
//     caller's tenant, with the owner and team the server sets (a body that
//     names an owner, team or tenant is refused with 422, as docs/api.md
//     says; a sync push ignores the read-only owner and team columns), or
//     is refused and changes no document;
//   - an admin route is refused to the manager and the rep and changes
//     nothing; reads change nothing; nothing of tenant B ever changes.
//
// A route of the document with no case here fails the test. The reads run
// first, then every refusal, each phase between two snapshots of the whole
// database, then the successes, each between two reads of the collection it
// creates in; tenant B's documents are compared at the end. Like
// TestEveryRouteByRoleAndTarget it checks rights, not concurrency: it runs
// without -race.
func TestEveryCollectionRouteByRole(t *testing.T) {
	if raceDetector {
		t.Skip("runs without -race (it checks rights, not concurrency); .ci/run's driver-path pass runs it")
	}
	w := newWorld(t)
	h := w.h
	db := testDatabase(t, h)
	f := newFixtures(t, h)
	tenantA, tenantB := w.admin.tenant, w.adminB.tenant
	tenantOf := map[string]string{w.r1.id: tenantA, w.r1b.id: tenantA, w.r2.id: tenantA, w.repB.id: tenantB, w.admin.id: tenantA, w.m1.id: tenantA}

	// Seed: every owner has a record of every collection, a flagged
	// duplicate, a deleted customer, a conflict, a notification and a device.
	records := f.records()
	owners := []account{w.r1, w.r1b, w.r2, w.repB}
	customerOf := map[string]string{}
	orderOf := map[string]string{}
	for _, owner := range owners {
		for _, coll := range slices.Sorted(maps.Keys(records)) {
			records[coll](owner)
		}
		customerOf[owner.id] = f.customer(owner)
		orderOf[owner.id] = f.order(owner)
		dup := f.unique("Twin")
		f.h.newCustomer(owner, map[string]any{"name": dup, "kind": "company"})
		h.call("POST", "/v1/customers?on_duplicate=flag", owner, map[string]any{"name": dup, "kind": "company"}, 201)
		gone := f.customer(owner)
		h.call("DELETE", "/v1/customers/"+gone, owner, nil, 204)
		f.conflict(owner)
	}
	for _, a := range slices.Concat(owners, []account{w.admin, w.m1}) {
		f.notification(a, tenantOf[a.id])
		h.call("POST", "/v1/devices", a, map[string]any{"device_id": "device-of-" + a.id, "fcm_token": "token-" + a.id, "platform": "android"}, 200)
	}

	callers := []matrixCaller{
		{role: models.RoleAdmin, as: w.admin, tenant: tenantA},
		{role: models.RoleManager, as: w.m1, tenant: tenantA, manages: []string{w.t1}},
		{role: models.RoleRep, as: w.r1, tenant: tenantA, team: w.t1},
	}
	// ownedLike checks that a created document is owner's, in team, in tenant A.
	ownedLike := func(owner account, team string) func(bson.M) {
		return func(doc bson.M) {
			if doc["owner_id"] != owner.id || doc["team_id"] != team || doc["tenant_id"] != tenantA {
				t.Errorf("created %v: owner %v team %v tenant %v, want %s, %q, %s", doc["_id"], doc["owner_id"], doc["team_id"], doc["tenant_id"], owner.id, team, tenantA)
			}
		}
	}
	teamOf := map[string]string{w.r1.id: w.t1, w.r1b.id: w.t1, w.r2.id: w.t2, w.repB.id: w.tB}
	// parents are whose customer (or order) a create names.
	parents := []account{w.r1, w.r1b, w.r2, w.repB}
	seesParent := func(c matrixCaller, owner account) bool {
		return tenantOf[owner.id] == c.tenant && (c.role == models.RoleAdmin || owner.id == c.as.id ||
			c.role == models.RoleManager && slices.Contains(c.manages, teamOf[owner.id]))
	}
	// foreign are the server's fields a create may not name, with another
	// team's or tenant's value.
	foreign := map[string]any{"owner_id": w.r2.id, "team_id": w.t2}
	withField := func(body map[string]any, k string, v any) map[string]any {
		b := map[string]any{k: v}
		for bk, bv := range body {
			b[bk] = bv
		}
		return b
	}
	// creates returns the cases of POST /v1/<coll>: on a parent of each
	// owner (a success creates one record, the parent's owner's; a parent
	// the caller does not see is refused like a missing one, 422 on its
	// field), and with a server field of another team's or a tenant_id of
	// tenant B's (422: docs/api.md says the server's fields are refused, not
	// ignored, and the tenant is the token's).
	creates := func(coll string, body func(parent account) map[string]any) func(c matrixCaller) []collectionWrite {
		return func(c matrixCaller) []collectionWrite {
			var out []collectionWrite
			for _, parent := range parents {
				if coll == "customers" && parent.id != w.r1.id {
					continue // a customer names no parent
				}
				cw := collectionWrite{what: "on " + parent.email + "'s", path: "/v1/" + coll, body: body(parent), want: 201, created: coll}
				switch {
				case coll == "customers":
					cw.check = ownedLike(c.as, c.team)
				case seesParent(c, parent):
					cw.check = ownedLike(parent, teamOf[parent.id])
				default:
					cw.want = 422
				}
				out = append(out, cw)
			}
			for k, v := range foreign {
				out = append(out, collectionWrite{what: "naming " + k, path: "/v1/" + coll, body: withField(body(c.as), k, v), want: 422})
			}
			// tenant_id is no field of any request: the tenant is the token's.
			out = append(out, collectionWrite{what: "naming tenant B", path: "/v1/" + coll, body: withField(body(c.as), "tenant_id", tenantB), want: 422})
			return out
		}
	}
	routes := map[string]collectionRoute{}
	for coll := range records {
		routes["GET /v1/"+coll] = collectionRoute{list: coll}
		switch coll {
		case "customers":
			routes["POST /v1/customers"] = collectionRoute{writes: creates(coll, func(account) map[string]any {
				return map[string]any{"name": f.unique("Created customer"), "kind": "company"}
			})}
		case "orders":
			routes["POST /v1/orders"] = collectionRoute{writes: creates(coll, func(p account) map[string]any {
				return map[string]any{"customer_id": customerOf[p.id], "currency": "CNY",
					"items": []any{map[string]any{"product": "Valve", "quantity": 1, "unit_price": 100}}}
			})}
		case "payments":
			routes["POST /v1/payments"] = collectionRoute{writes: creates(coll, func(p account) map[string]any {
				return map[string]any{"order_id": orderOf[p.id], "method": "cash", "amount": 1}
			})}
		default:
			routes["POST /v1/"+coll] = collectionRoute{writes: creates(coll, func(p account) map[string]any {
				return withField(childBody(coll), "customer_id", customerOf[p.id])
			})}
		}
	}
	routes["GET /v1/duplicates"] = collectionRoute{list: "customers", keep: func(d bson.M) bool { return d["duplicate"] != nil }}
	routes["GET /v1/conflicts"] = collectionRoute{list: "conflicts"}
	routes["GET /v1/notifications"] = collectionRoute{list: "notifications"}
	routes["GET /v1/users"] = collectionRoute{list: "users"}
	routes["GET /v1/teams"] = collectionRoute{list: "teams", unpaged: true}
	routes["GET /v1/devices"] = collectionRoute{read: func(c matrixCaller) (string, func(response)) {
		return "/v1/devices", func(r response) {
			var got []string
			for _, d := range r.json(t)["data"].([]any) {
				got = append(got, d.(map[string]any)["device_id"].(string))
			}
			if want := []string{"device-of-" + c.as.id}; !slices.Equal(got, want) {
				t.Errorf("GET /v1/devices as %s: %v, want %v", c.role, got, want)
			}
		}
	}}
	routes["GET /v1/me"] = collectionRoute{read: func(c matrixCaller) (string, func(response)) {
		return "/v1/me", func(r response) {
			if got := r.json(t)["user"].(map[string]any)["id"]; got != c.as.id {
				t.Errorf("GET /v1/me as %s: user %v", c.role, got)
			}
		}
	}}
	for _, path := range []string{"/healthz", "/readyz", "/v1/openapi.json", "/v1/settings", "/v1/sync/schema", "/v1/sync/models",
		"/v1/reports/customers", "/v1/reports/funnel", "/v1/reports/sales", "/v1/reports/activity", "/v1/reports/service",
		"/v1/reports/loyalty", "/v1/reports/rfm"} {
		routes["GET "+path] = collectionRoute{read: func(matrixCaller) (string, func(response)) { return path, nil }}
	}
	// A pull gives each table's records by the same rule as the lists.
	routes["GET /v1/sync/pull"] = collectionRoute{read: func(c matrixCaller) (string, func(response)) {
		return "/v1/sync/pull?last_pulled_at=null", func(response) {
			kinds, _, _ := h.pullAll(c.as, "null")
			for _, table := range append(slices.Sorted(maps.Keys(records)), "conflicts", "notifications") {
				got := slices.Concat(kinds[table+"/created"], kinds[table+"/updated"])
				slices.Sort(got)
				if want := visibleIDs(t, db, c, table, nil); !slices.Equal(got, want) {
					t.Errorf("GET /v1/sync/pull as %s: %s %v, the rule gives %v", c.role, table, got, want)
				}
			}
		}
	}}
	// An export gives the customers the caller sees, and is audited.
	routes["GET /v1/exports/customers"] = collectionRoute{touches: []string{"audit"}, read: func(c matrixCaller) (string, func(response)) {
		return "/v1/exports/customers?format=csv", func(r response) {
			rows, err := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(r.body, []byte("\uFEFF")))).ReadAll()
			if err != nil {
				t.Fatalf("export as %s: %v", c.role, err)
			}
			if want := len(visibleIDs(t, db, c, "customers", nil)); len(rows)-1 != want {
				t.Errorf("export as %s: %d customers, the rule gives %d", c.role, len(rows)-1, want)
			}
		}
	}}

	// Admins only.
	routes["GET /v1/audit"] = collectionRoute{admin: true}
	routes["POST /v1/pool/reclaim"] = collectionRoute{admin: true}
	routes["POST /v1/reports/rfm/refresh"] = collectionRoute{admin: true}
	routes["PATCH /v1/settings"] = collectionRoute{admin: true, writes: func(matrixCaller) []collectionWrite {
		return []collectionWrite{{path: "/v1/settings", body: map[string]any{"pool_reclaim_days": 400}, want: 200}}
	}}
	routes["POST /v1/teams"] = collectionRoute{admin: true, writes: func(matrixCaller) []collectionWrite {
		return []collectionWrite{{path: "/v1/teams", body: map[string]any{"name": f.unique("Team")}, want: 201, created: "teams",
			check: func(doc bson.M) {
				if doc["tenant_id"] != tenantA {
					t.Errorf("POST /v1/teams: team in tenant %v", doc["tenant_id"])
				}
			}}}
	}}
	// Admins create anyone, managers reps of their teams, reps nobody.
	routes["POST /v1/users"] = collectionRoute{writes: func(c matrixCaller) []collectionWrite {
		user := func(team string) map[string]any {
			return map[string]any{"email": strings.ReplaceAll(f.unique("new"), " ", "") + "@a.test", "name": "New", "password": testPassword, "role": "rep", "team_id": team}
		}
		inA := func(doc bson.M) {
			if doc["tenant_id"] != tenantA {
				t.Errorf("POST /v1/users as %s: user in tenant %v", c.role, doc["tenant_id"])
			}
		}
		var out []collectionWrite
		for _, team := range []string{w.t1, w.t2, w.tB} {
			cw := collectionWrite{what: "in team " + team, path: "/v1/users", body: user(team), want: 201, created: "users", check: inA}
			switch {
			case c.role == models.RoleRep, c.role == models.RoleManager && !slices.Contains(c.manages, team):
				cw.want = 403 // the role is checked first
			case team == w.tB:
				cw.want = 422 // a team of another tenant is no team of this one
			}
			out = append(out, cw)
		}
		if c.role != models.RoleRep {
			out = append(out, collectionWrite{what: "naming tenant B", path: "/v1/users", body: withField(user(w.t1), "tenant_id", tenantB), want: 422})
		}
		return out
	}}
	// Devices are the caller's own.
	routes["POST /v1/devices"] = collectionRoute{writes: func(c matrixCaller) []collectionWrite {
		return []collectionWrite{{path: "/v1/devices", body: map[string]any{"device_id": "device-of-" + c.as.id, "fcm_token": "token-2-" + c.as.id, "platform": "android"}, want: 200}}
	}}
	// A pushed customer is the pusher's, whatever owner and team it names
	// (read-only columns of the sync schema are ignored); a pushed contact
	// of a customer the pusher does not see is refused alone.
	routes["POST /v1/sync/push"] = collectionRoute{writes: func(c matrixCaller) []collectionWrite {
		d := h.device(c.as, "matrix-"+string(c.role))
		push := func(changes map[string]any) func() response {
			return func() response {
				return h.do("POST", "/v1/sync/push?last_pulled_at="+d.cursor, d.as.access, map[string]any{"changes": changes})
			}
		}
		newID := func() string { return strings.ReplaceAll(f.unique("mx-"+string(c.role)), " ", "-") }
		var out []collectionWrite
		for _, parent := range parents {
			id := newID()
			cw := collectionWrite{what: "of a contact of " + parent.email + "'s customer", want: 200, created: "contacts",
				send: push(map[string]any{"contacts": map[string]any{"created": []any{map[string]any{"id": id, "customer_id": customerOf[parent.id], "name": "Wang"}}}})}
			if seesParent(c, parent) {
				cw.check = ownedLike(parent, teamOf[parent.id])
			} else {
				cw.refusedRow = id
			}
			out = append(out, cw)
		}
		return append(out, collectionWrite{what: "of a customer naming another owner and team", want: 200, created: "customers", check: ownedLike(c.as, c.team),
			send: push(map[string]any{"customers": map[string]any{"created": []any{map[string]any{"id": newID(), "name": f.unique("Pushed"), "kind": "company",
				"owner_id": w.r2.id, "team_id": w.t2}}}})})
	}}
	// An import's customers are the importer's.
	routes["POST /v1/imports"] = collectionRoute{own: forEach(func(c matrixCaller) {
		before := documentIDs(t, db, "customers")
		h.runImport(c.as, "customers.csv", []byte("name,kind\n"+f.unique("Imported")+",company\n"+f.unique("Imported")+",company\n"), nil)
		got := docsNotIn(t, db, "customers", before)
		if len(got) != 2 {
			t.Errorf("import as %s: %d customers created, want 2", c.role, len(got))
		}
		for _, doc := range got {
			ownedLike(c.as, c.team)(doc)
		}
	})}
	// Sessions: a sign-in and a refresh are the caller's; a sign-out ends
	// only the session it is sent with; a sign-up makes a tenant of its own,
	// whatever token comes with it.
	routes["POST /v1/auth/login"] = collectionRoute{own: forEach(func(c matrixCaller) {
		s := h.login(c.as.email, testPassword)
		h.call("GET", "/v1/me", s, nil, 200)
	})}
	routes["POST /v1/auth/refresh"] = collectionRoute{own: forEach(func(c matrixCaller) {
		s := h.login(c.as.email, testPassword)
		r := h.do("POST", "/v1/auth/refresh", c.as.access, map[string]any{"refresh_token": s.refresh})
		h.expect(r, 200, "refresh as "+string(c.role))
		fresh := account{access: r.json(t)["access_token"].(string)}
		if got := h.call("GET", "/v1/me", fresh, nil, 200)["user"].(map[string]any)["id"]; got != c.as.id {
			t.Errorf("refresh as %s: tokens of user %v", c.role, got)
		}
	})}
	routes["POST /v1/auth/logout"] = collectionRoute{own: forEach(func(c matrixCaller) {
		s := h.login(c.as.email, testPassword)
		h.call("POST", "/v1/auth/logout", s, nil, 204)
		if r := h.do("GET", "/v1/me", s.access, nil); r.status != 401 {
			t.Errorf("logout as %s: the session's token still answers %d", c.role, r.status)
		}
		h.call("GET", "/v1/me", c.as, nil, 200)
	})}
	routes["POST /v1/auth/signup"] = collectionRoute{own: func(callers []matrixCaller) {
		before := documents(t, db)
		for _, c := range callers {
			email := strings.ReplaceAll(f.unique("signup"), " ", "") + "@c.test"
			r := h.do("POST", "/v1/auth/signup", c.as.access, map[string]any{"company_name": "Cargo", "name": "C", "email": email, "password": testPassword})
			h.expect(r, 201, "signup with the token of "+string(c.role))
			if tenant := r.json(t)["user"].(map[string]any)["tenant_id"]; tenant == tenantA || tenant == tenantB {
				t.Errorf("signup with the token of %s: the user is in tenant %v", c.role, tenant)
			}
		}
		after := documents(t, db)
		for _, tenant := range []string{tenantA, tenantB} {
			if changed := changedDocuments(tenantDocs(before, tenant), tenantDocs(after, tenant)); len(changed) > 0 {
				t.Errorf("signups changed %v", changed)
			}
		}
	}}

	// Sort the cases into the phases.
	type call struct {
		name, method string
		c            matrixCaller
		cw           collectionWrite
	}
	var reads []func()
	var refusals, successes []call
	var owns []func([]matrixCaller)
	success := successStatuses(t, h)
	for _, route := range documentedRoutes(t, h) {
		if strings.Contains(route, "{") {
			continue
		}
		spec, ok := routes[route]
		if !ok {
			t.Errorf("%s: no case here; say how each role may use it", route)
			continue
		}
		method, path, _ := strings.Cut(route, " ")
		switch {
		case spec.list != "":
			reads = append(reads, func() {
				idField := cmp.Or(spec.idField, "id")
				for _, c := range callers {
					got := listedIDs(t, h, path, c.as, idField, spec.unpaged)
					want := visibleIDs(t, db, c, spec.list, spec.keep)
					if !slices.Equal(got, want) {
						t.Errorf("%s as %s lists %d records, the rule gives %d:\n got %v\nwant %v", route, c.role, len(got), len(want), got, want)
					}
					if len(want) == 0 {
						t.Errorf("%s as %s: the rule gives nothing, so the list proves nothing; seed more", route, c.role)
					}
				}
			})
		case spec.read != nil:
			reads = append(reads, func() {
				for _, c := range callers {
					p, check := spec.read(c)
					r := h.do(method, p, c.as.access, nil)
					if r.status != 200 {
						t.Errorf("%s as %s: status %d; %.300s", route, c.role, r.status, r.body)
						continue
					}
					if check != nil {
						check(r)
					}
				}
			})
		case spec.own != nil:
			owns = append(owns, spec.own)
		case spec.writes != nil || spec.admin:
			for _, c := range callers {
				cases := []collectionWrite{{path: path, want: success[route]}}
				if spec.writes != nil {
					cases = spec.writes(c)
				}
				for _, cw := range cases {
					if spec.admin && c.role != models.RoleAdmin {
						cw.want = 403
					}
					k := call{name: strings.TrimSpace(fmt.Sprintf("%s as %s %s", route, c.role, cw.what)), method: method, c: c, cw: cw}
					if cw.refusal() {
						refusals = append(refusals, k)
					} else {
						successes = append(successes, k)
					}
				}
			}
		default:
			t.Errorf("%s: its case says nothing to do", route)
		}
	}
	t.Logf("%d route checks reading, %d refusals, %d successes, %d routes of their own", len(reads), len(refusals), len(successes), len(owns))
	send := func(k call) response {
		if k.cw.send != nil {
			return k.cw.send()
		}
		return h.do(k.method, k.cw.path, k.c.as.access, k.cw.body)
	}
	statusOK := func(k call, r response) bool {
		if r.status != k.cw.want {
			t.Errorf("%s: status %d, want %d; %.300s", k.name, r.status, k.cw.want, r.body)
			return false
		}
		return true
	}

	// Reads change nothing (but an export's audit entry, and where a
	// pulling device stood, kept for its next push).
	before := documents(t, db)
	for _, read := range reads {
		read()
	}
	after := documents(t, db)
	for _, k := range changedDocuments(before, after) {
		if coll, _, _ := strings.Cut(k, "/"); coll != "audit" && coll != "sync_rounds" {
			t.Errorf("the reads changed %s", k)
		}
	}

	// Refusals change nothing.
	before = after
	for _, k := range refusals {
		r := send(k)
		if statusOK(k, r) && k.cw.refusedRow != "" && !strings.Contains(jsonString(r.json(t)["experimentalRejectedIds"]), `"`+k.cw.refusedRow+`"`) {
			t.Errorf("%s: %s not refused; %.300s", k.name, k.cw.refusedRow, r.body)
		}
	}
	after = documents(t, db)
	if changed := changedDocuments(before, after); len(changed) > 0 {
		t.Errorf("refusals changed %v", changed)
	}

	// A success creates one document of the caller's tenant, with the
	// owner and team the server sets.
	beforeB := tenantDocs(after, tenantB)
	for _, k := range successes {
		var had map[string]bool
		if k.cw.created != "" {
			had = documentIDs(t, db, k.cw.created)
		}
		r := send(k)
		if !statusOK(k, r) || k.cw.created == "" {
			continue
		}
		if got := docsNotIn(t, db, k.cw.created, had); len(got) != 1 {
			t.Errorf("%s: created %d %s, want 1; %.300s", k.name, len(got), k.cw.created, r.body)
		} else if k.cw.check != nil {
			k.cw.check(got[0])
		}
	}
	for _, own := range owns {
		own(callers)
	}
	if changed := changedDocuments(beforeB, tenantDocs(documents(t, db), tenantB)); len(changed) > 0 {
		t.Errorf("tenant A's calls changed tenant B's %v", changed)
	}
}

// forEach runs f for each caller.
func forEach(f func(matrixCaller)) func([]matrixCaller) {
	return func(callers []matrixCaller) {
		for _, c := range callers {
			f(c)
		}
	}
}

// documentIDs are the _ids of coll's documents.
func documentIDs(t *testing.T, db *mongo.Database, coll string) map[string]bool {
	t.Helper()
	ids := map[string]bool{}
	for _, d := range storedDocs(t, db, coll) {
		ids[fmt.Sprint(d["_id"])] = true
	}
	return ids
}

// docsNotIn are coll's documents whose _id is not in had.
func docsNotIn(t *testing.T, db *mongo.Database, coll string, had map[string]bool) []bson.M {
	t.Helper()
	var out []bson.M
	for _, d := range storedDocs(t, db, coll) {
		if !had[fmt.Sprint(d["_id"])] {
			out = append(out, d)
		}
	}
	return out
}
