package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/fieldcrm/fieldcrm/internal/testenv"
	"github.com/fieldcrm/fieldcrm/models"
)

// documentedRoutes returns "METHOD /path" for every operation of the
// OpenAPI document, sorted.
func documentedRoutes(t *testing.T, h *harness) []string {
	t.Helper()
	var doc struct {
		Paths map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(h.do("GET", "/v1/openapi.json", "", nil).body, &doc); err != nil {
		t.Fatal(err)
	}
	var routes []string
	for path, ops := range doc.Paths {
		for method := range ops {
			routes = append(routes, strings.ToUpper(method)+" "+path)
		}
	}
	slices.Sort(routes)
	if len(routes) == 0 {
		t.Fatal("no route in the OpenAPI document")
	}
	return routes
}

// testDatabase connects to the harness's database for the test's duration.
func testDatabase(t testing.TB, h *harness) *mongo.Database {
	t.Helper()
	ctx := context.Background()
	client, err := mongo.Connect(ctx, options.Client().ApplyURI(env.MongoURI()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Disconnect(ctx) })
	return client.Database(h.store.DatabaseName())
}

// documents returns every stored document of db, by "collection/_id", as
// extended JSON.
func documents(t *testing.T, db *mongo.Database) map[string]string {
	t.Helper()
	ctx := context.Background()
	names, err := db.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, name := range names {
		cur, err := db.Collection(name).Find(ctx, bson.D{})
		if err != nil {
			t.Fatal(err)
		}
		var docs []bson.Raw
		if err := cur.All(ctx, &docs); err != nil {
			t.Fatal(err)
		}
		for _, d := range docs {
			out[name+"/"+d.Lookup("_id").String()] = d.String()
		}
	}
	return out
}

// snapshots takes snapshots of the stored documents of a harness's
// database, for before/after comparisons: straight from the SQLite tables
// when the tests run on them (testenv.Documents, milliseconds), through the
// driver otherwise (documents, about half a millisecond per document). Both
// key documents by "collection/_id" and hold each document's full text, so
// tenantDocs and changedDocuments work on either; compare only snapshots
// of one snapshots.
type snapshots struct {
	db     *mongo.Database
	direct *testenv.Documents
}

func newSnapshots(tb testing.TB, h *harness) *snapshots {
	tb.Helper()
	return &snapshots{db: testDatabase(tb, h), direct: env.Documents(tb, h.store.DatabaseName())}
}

// take returns every stored document of the database.
func (s *snapshots) take(t *testing.T) map[string]string {
	t.Helper()
	if s.direct == nil {
		return documents(t, s.db)
	}
	docs, err := s.direct.All(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return docs
}

// document returns one stored document as extended JSON ("" if none).
func document(t *testing.T, db *mongo.Database, coll, id string) string {
	t.Helper()
	raw, err := db.Collection(coll).FindOne(context.Background(), bson.D{{Key: "_id", Value: id}}).Raw()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return raw.String()
}

// matrixTarget is whose record a request names: the rep r1's (the rep's
// own, in the manager m1's team), the rep r2's (another team), or the rep
// of tenant B's (another tenant).
type matrixTarget int

const (
	ownRecord matrixTarget = iota
	otherTeamRecord
	otherTenantRecord
)

func (m matrixTarget) String() string {
	return [...]string{"own record", "other team's record", "other tenant's record"}[m]
}

// matrixRoute says how to try one route with a path parameter.
type matrixRoute struct {
	// make creates a fresh target owned by owner and returns the path
	// parameter, the collection of the document a success changes, and its
	// _id as the store keys it ("" collection: nothing to change).
	make recordMaker
	// body is the request body for the target (nil: none).
	body func(owner account) any
	// least is the least role that may use the route on a record it sees.
	least models.Role
	// personal routes act on the caller's own things only (a device, an
	// inbox entry): another user, even an admin, gets 404.
	personal bool
	// refused is the status every caller who sees the record gets instead
	// of success (an append-only record's edit), 0 if none.
	refused int
	// ownerAndAdmins routes act on records only their owner and the
	// tenant's admins see (an import: not the uploader's manager).
	ownerAndAdmins bool
	// unseenEmpty routes list a record's records: for a record the caller
	// does not see they answer 200 with an empty list (for any id, so
	// nothing tells whether it exists).
	unseenEmpty bool
	// tenantWide routes act on records every user of the tenant sees (a
	// customer in the public pool).
	tenantWide bool
	// unseen is the status a caller who does not see the record gets (0:
	// 404). Deleting a device the caller does not have is done already: 204.
	unseen int
}

// TestEveryRouteByRoleAndTarget tries every route of the OpenAPI document
// that names a record in its path, as each role of tenant A (admin, manager
// m1, rep r1) on a fresh record of each target (the rep's own, another
// team's, another tenant's), and checks the status and the stored data: a
// success changed the named record; a refusal, or a read, changed no
// document at all. A route of the document with no case here fails the test.
// (Routes without a path parameter name no record;
// TestEveryCollectionRouteByRole tries them by role.)
//
// It checks rights, not concurrency, and snapshots the database around
// hundreds of requests: under the race detector it takes minutes, and over
// FerretDB's wire protocol over ten, so .ci/run runs it once, without
// -race, on the embedded engines.
func TestEveryRouteByRoleAndTarget(t *testing.T) {
	if raceDetector {
		t.Skip("runs without -race (it checks rights, not concurrency); .ci/run runs it in a step of its own")
	}
	w := newWorld(t)
	h := w.h
	owners := map[matrixTarget]account{ownRecord: w.r1, otherTeamRecord: w.r2, otherTenantRecord: w.repB}
	teams := map[string]string{w.r1.id: w.t1, w.r2.id: w.t2, w.repB.id: w.tB}
	tenantOf := map[string]string{w.r1.id: w.admin.tenant, w.r2.id: w.admin.tenant, w.repB.id: w.adminB.tenant}
	f := newFixtures(t, h)
	unique, customer, records := f.unique, f.customer, f.records()
	ofCustomer := records["customers"]
	edits := map[string]func(account) any{
		"customers":       func(account) any { return map[string]any{"title": unique("title")} },
		"contacts":        func(account) any { return map[string]any{"name": unique("name")} },
		"interactions":    func(account) any { return map[string]any{"content": unique("content")} },
		"tasks":           func(account) any { return map[string]any{"title": unique("title")} },
		"orders":          func(account) any { return map[string]any{"note": unique("note")} },
		"payments":        func(account) any { return map[string]any{"reference": unique("ref")} },
		"tickets":         func(account) any { return map[string]any{"title": unique("title")} },
		"surveys":         func(account) any { return map[string]any{"comment": unique("comment")} },
		"loyalty_entries": func(account) any { return map[string]any{"reason": unique("reason")} },
	}
	routes := map[string]matrixRoute{}
	for coll, make := range records {
		routes["GET /v1/"+coll+"/{id}"] = matrixRoute{make: readOnly(make), least: models.RoleRep}
		routes["PATCH /v1/"+coll+"/{id}"] = matrixRoute{make: make, body: edits[coll], least: models.RoleRep}
		routes["DELETE /v1/"+coll+"/{id}"] = matrixRoute{make: make, least: models.RoleRep}
		if coll != "customers" {
			routes["GET /v1/customers/{id}/"+coll] = matrixRoute{make: readOnly(ofCustomer), least: models.RoleRep, unseenEmpty: true}
		}
	}
	routes["PATCH /v1/loyalty_entries/{id}"] = matrixRoute{make: records["loyalty_entries"], body: edits["loyalty_entries"], least: models.RoleRep, refused: 409}
	routes["DELETE /v1/loyalty_entries/{id}"] = matrixRoute{make: records["loyalty_entries"], least: models.RoleRep, refused: 409}
	routes["GET /v1/customers/{id}/timeline"] = matrixRoute{make: readOnly(ofCustomer), least: models.RoleRep}
	routes["GET /v1/customers/{id}/personal-data"] = matrixRoute{make: readOnly(ofCustomer), least: models.RoleAdmin}
	routes["POST /v1/customers/{id}/erase"] = matrixRoute{make: ofCustomer, least: models.RoleAdmin}
	routes["POST /v1/customers/{id}/merge"] = matrixRoute{make: ofCustomer, least: models.RoleRep,
		body: func(owner account) any { return map[string]any{"from": []string{customer(owner)}} }}
	routes["POST /v1/customers/{id}/assign"] = matrixRoute{make: ofCustomer, least: models.RoleManager,
		body: func(account) any { return map[string]any{"owner_id": w.r1b.id} }}
	routes["POST /v1/customers/{id}/claim"] = matrixRoute{least: models.RoleRep, tenantWide: true,
		make: func(owner account) (string, string, string) {
			id := customer(owner)
			h.call("POST", "/v1/customers/"+id+"/release", owner, nil, 200)
			return id, "customers", id
		}}
	routes["POST /v1/customers/{id}/release"] = matrixRoute{make: ofCustomer, least: models.RoleRep}
	routes["GET /v1/tasks/{id}/reminders"] = matrixRoute{make: readOnly(records["tasks"]), least: models.RoleRep}
	routes["POST /v1/tickets/{id}/comments"] = matrixRoute{make: records["tickets"], least: models.RoleRep,
		body: func(account) any { return map[string]any{"body": unique("comment")} }}
	routes["GET /v1/users/{id}"] = matrixRoute{make: readOnly(func(owner account) (string, string, string) { return owner.id, "users", rawID(owner.id) }), least: models.RoleRep}
	routes["PATCH /v1/users/{id}"] = matrixRoute{make: func(owner account) (string, string, string) { return owner.id, "users", rawID(owner.id) },
		body: func(account) any { return map[string]any{"name": unique("Name")} }, least: models.RoleRep}
	routes["GET /v1/teams/{id}"] = matrixRoute{make: readOnly(func(owner account) (string, string, string) { return teams[owner.id], "teams", "" }), least: models.RoleRep}
	conflictOf := f.conflict
	routes["GET /v1/conflicts/{id}"] = matrixRoute{make: readOnly(conflictOf), least: models.RoleRep}
	routes["POST /v1/conflicts/{id}/resolve"] = matrixRoute{make: conflictOf, least: models.RoleRep,
		body: func(account) any { return map[string]any{"action": "revert"} }}
	routes["POST /v1/notifications/{id}/read"] = matrixRoute{personal: true, least: models.RoleRep,
		make: func(owner account) (string, string, string) {
			id := f.notification(owner, tenantOf[owner.id])
			return id, "notifications", rawID(id)
		}}
	routes["DELETE /v1/devices/{id}"] = matrixRoute{personal: true, least: models.RoleRep, unseen: 204,
		make: func(owner account) (string, string, string) {
			id := strings.ReplaceAll(unique("device"), " ", "-")
			h.call("POST", "/v1/devices", owner, map[string]any{"device_id": id, "fcm_token": "token-" + id, "platform": "android"}, 200)
			return id, "devices", ""
		}}
	importOf := func(owner account) (string, string, string) {
		// Finished before the route is tried: a running import writes.
		im := h.runImport(owner, "customers.csv", []byte("name,kind\n"+unique("Imported")+",company\n"), nil)
		return im["id"].(string), "", ""
	}
	routes["GET /v1/imports/{id}"] = matrixRoute{make: importOf, least: models.RoleRep, ownerAndAdmins: true}
	routes["GET /v1/imports/{id}/failures"] = matrixRoute{make: importOf, least: models.RoleRep, ownerAndAdmins: true}

	callers := []struct {
		role models.Role
		as   account
	}{{models.RoleAdmin, w.admin}, {models.RoleManager, w.m1}, {models.RoleRep, w.r1}}
	success := successStatuses(t, h)
	db := testDatabase(t, h)
	type matrixCase struct {
		name, path     string
		as             account
		want           int
		sees           bool
		body           any
		coll, recordID string
	}
	for _, route := range documentedRoutes(t, h) {
		if !strings.Contains(route, "{") {
			continue
		}
		spec, ok := routes[route]
		if !ok {
			t.Errorf("%s: no case here; add how to make its record", route)
			continue
		}
		method, pattern, _ := strings.Cut(route, " ")
		var refusals, writes []matrixCase
		for _, caller := range callers {
			for target := ownRecord; target <= otherTenantRecord; target++ {
				owner := owners[target]
				c := matrixCase{name: fmt.Sprintf("%s as %s on %s", route, caller.role, target), as: caller.as}
				var param string
				param, c.coll, c.recordID = spec.make(owner)
				c.path = strings.Replace(pattern, "{id}", param, 1)
				c.sees = target != otherTenantRecord && (caller.role == models.RoleAdmin || target == ownRecord || spec.tenantWide)
				if spec.personal {
					c.sees = caller.as.id == owner.id
				}
				if spec.ownerAndAdmins {
					c.sees = target != otherTenantRecord && (caller.role == models.RoleAdmin || caller.as.id == owner.id)
				}
				c.want = success[route]
				switch {
				// The role is checked before the record is looked up, so
				// a forbidden role learns nothing of any record.
				case rank(caller.role) < rank(spec.least):
					c.want = 403
				case !c.sees && spec.unseenEmpty:
					c.want = 200
				case !c.sees && spec.unseen != 0:
					c.want = spec.unseen
				case !c.sees:
					c.want = 404
				case spec.refused != 0:
					c.want = spec.refused
				}
				if spec.body != nil {
					c.body = spec.body(owner)
				}
				if c.want >= 300 || !c.sees || method == "GET" {
					refusals = append(refusals, c)
				} else {
					writes = append(writes, c)
				}
			}
		}
		// Refusals and reads of the route change no document at all.
		before := documents(t, db)
		for _, c := range refusals {
			r := h.do(method, c.path, c.as.access, c.body)
			if r.status != c.want {
				t.Errorf("%s: status %d, want %d; %.200s", c.name, r.status, c.want, r.body)
			}
			if !c.sees && spec.unseenEmpty && r.status == 200 {
				if data, _ := r.json(t)["data"].([]any); len(data) != 0 {
					t.Errorf("%s: lists %d records of a customer the caller does not see", c.name, len(data))
				}
			}
		}
		if changed := changedDocuments(before, documents(t, db)); len(changed) > 0 {
			t.Errorf("%s: refusals and reads changed %v", route, changed)
		}
		// A success changes the record it names.
		for _, c := range writes {
			was := document(t, db, c.coll, c.recordID)
			if r := h.do(method, c.path, c.as.access, c.body); r.status != c.want {
				t.Errorf("%s: status %d, want %d; %.200s", c.name, r.status, c.want, r.body)
				continue
			}
			if c.coll != "" && c.recordID != "" && document(t, db, c.coll, c.recordID) == was {
				t.Errorf("%s: succeeded, and %s/%s is unchanged", c.name, c.coll, c.recordID)
			}
		}
	}
}

// recordMaker creates a fresh record owned by owner and returns the path
// parameter that names it, its collection and its _id.
type recordMaker func(owner account) (param, collection, docID string)

// fixtures makes the records the role matrices try routes on, each through
// its owner's own requests, so that its owner, team and tenant are what the
// server set.
type fixtures struct {
	t *testing.T
	h *harness
	n int
}

func newFixtures(t *testing.T, h *harness) *fixtures { return &fixtures{t: t, h: h} }

// unique numbers prefix, so that no two fixtures match as duplicates.
func (f *fixtures) unique(prefix string) string { f.n++; return fmt.Sprintf("%s %d", prefix, f.n) }

func (f *fixtures) customer(owner account) string {
	return f.h.newCustomer(owner, map[string]any{"name": f.unique("Matrix customer"), "kind": "company"})["id"].(string)
}

func (f *fixtures) order(owner account) string {
	return f.h.call("POST", "/v1/orders", owner, map[string]any{"customer_id": f.customer(owner), "currency": "CNY",
		"items": []any{map[string]any{"product": "Pump", "quantity": 2, "unit_price": 50000}}}, 201)["id"].(string)
}

// childBody is a valid body of a record of a customer's collection coll
// (nil for a collection that is not one), without the customer_id.
func childBody(coll string) map[string]any {
	return map[string]map[string]any{
		"contacts":        {"name": "Li Na"},
		"interactions":    {"channel": "phone", "content": "call"},
		"tasks":           {"title": "Call back", "due_at": time.Now().Add(72 * time.Hour).UTC().Format(time.RFC3339)},
		"tickets":         {"type": "repair", "title": "Leaks"},
		"surveys":         {"csat": 2, "comment": "slow"},
		"loyalty_entries": {"kind": "earn", "points": 120, "reason": "gift"},
	}[coll]
}

// childCollections are the collections whose records hang off a customer.
var childCollections = []string{"contacts", "interactions", "tasks", "tickets", "surveys", "loyalty_entries"}

// records returns a maker for each CRM collection.
func (f *fixtures) records() map[string]recordMaker {
	h := f.h
	child := func(coll string) recordMaker {
		return func(owner account) (string, string, string) {
			b := childBody(coll)
			b["customer_id"] = f.customer(owner)
			id := h.call("POST", "/v1/"+coll, owner, b, 201)["id"].(string)
			return id, coll, rawID(id)
		}
	}
	makers := map[string]recordMaker{
		"customers": func(owner account) (string, string, string) {
			id := f.customer(owner)
			return id, "customers", rawID(id)
		},
		"orders": func(owner account) (string, string, string) { id := f.order(owner); return id, "orders", rawID(id) },
		"payments": func(owner account) (string, string, string) {
			id := h.call("POST", "/v1/payments", owner, map[string]any{"order_id": f.order(owner), "method": "bank_transfer", "amount": 40000}, 201)["id"].(string)
			return id, "payments", rawID(id)
		},
	}
	for _, coll := range childCollections {
		makers[coll] = child(coll)
	}
	return makers
}

// conflict makes a sync conflict on a fresh customer of owner's.
func (f *fixtures) conflict(owner account) (string, string, string) {
	h := f.h
	id := f.customer(owner)
	// Both phones pulled the customer before either pushes: their edits
	// of one column conflict.
	phones := []*device{h.device(owner, strings.ReplaceAll(f.unique("phone-x"), " ", "-")), h.device(owner, strings.ReplaceAll(f.unique("phone-y"), " ", "-"))}
	for i, d := range phones {
		d.push(map[string]any{"customers": map[string]any{"updated": []any{updated(id, map[string]any{"title": fmt.Sprint("title ", i)})}}}, 200)
	}
	data := h.call("GET", "/v1/conflicts?record_id="+id, owner, nil, 200)["data"].([]any)
	if len(data) == 0 {
		f.t.Fatalf("no conflict on %s", id)
	}
	cid := data[0].(map[string]any)["id"].(string)
	return cid, "conflicts", rawID(cid)
}

// notification puts a notification in owner's inbox (of tenant) and returns its id.
func (f *fixtures) notification(owner account, tenant string) string {
	note := models.Notification{UserID: owner.id, Kind: models.NotifyTaskDue, Title: "Due", Body: "Call", CollapseKey: f.unique("task:")}
	note.TenantID = tenant
	got, err := f.h.crm.Notify(context.Background(), note, models.IDFor(f.unique("event")))
	if err != nil {
		f.t.Fatal(err)
	}
	return got.ID
}

// readOnly marks a maker whose route reads: its success must change nothing.
func readOnly(make recordMaker) recordMaker {
	return func(owner account) (string, string, string) {
		param, _, _ := make(owner)
		return param, "", ""
	}
}

// rawID is a record's _id (the ids of the API are the stored ones).
func rawID(id string) string { return id }

func rank(r models.Role) int {
	return map[models.Role]int{models.RoleRep: 0, models.RoleManager: 1, models.RoleAdmin: 2}[r]
}

// changedDocuments lists the documents created, changed or deleted, sorted.
func changedDocuments(before, after map[string]string) []string {
	var out []string
	for k, v := range after {
		if before[k] != v {
			out = append(out, k)
		}
	}
	for k := range before {
		if _, ok := after[k]; !ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// successStatuses returns each documented operation's success status.
func successStatuses(t *testing.T, h *harness) map[string]int {
	t.Helper()
	var doc struct {
		Paths map[string]map[string]struct {
			Responses map[string]any `json:"responses"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(h.do("GET", "/v1/openapi.json", "", nil).body, &doc); err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			for code := range op.Responses {
				var c int
				if _, err := fmt.Sscan(code, &c); err == nil && c >= 200 && c < 300 && (out[strings.ToUpper(method)+" "+path] == 0 || c < out[strings.ToUpper(method)+" "+path]) {
					out[strings.ToUpper(method)+" "+path] = c
				}
			}
		}
	}
	return out
}
