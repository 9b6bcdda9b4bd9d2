package api_test

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/fieldcrm/fieldcrm/models"
)

// world is two tenants: A with an admin, two managers with a team each and
// three reps; B with an admin, a manager, a team and a rep.
type world struct {
	h             *harness
	admin, m1, m2 account
	r1, r1b, r2   account
	t1, t2        string
	adminB, repB  account
	tB            string
}

func newWorld(t *testing.T) *world {
	h := newHarness(t)
	w := &world{h: h}
	w.admin = h.signup("Acme", "admin@a.test")
	w.m1 = h.createUser(w.admin, "m1@a.test", "manager", "")
	w.m2 = h.createUser(w.admin, "m2@a.test", "manager", "")
	w.t1 = h.createTeam(w.admin, "North", w.m1.id)
	w.t2 = h.createTeam(w.admin, "South", w.m2.id)
	w.r1 = h.createUser(w.m1, "r1@a.test", "rep", w.t1)
	w.r1b = h.createUser(w.admin, "r1b@a.test", "rep", w.t1)
	w.r2 = h.createUser(w.m2, "r2@a.test", "rep", w.t2)
	w.adminB = h.signup("Bolt", "admin@b.test")
	mB := h.createUser(w.adminB, "m@b.test", "manager", "")
	w.tB = h.createTeam(w.adminB, "East", mB.id)
	w.repB = h.createUser(w.adminB, "r@b.test", "rep", w.tB)
	return w
}

func emails(t *testing.T, r response) []string {
	t.Helper()
	var out []string
	for _, u := range r.json(t)["data"].([]any) {
		out = append(out, u.(map[string]any)["email"].(string))
	}
	sort.Strings(out)
	return out
}

func TestListsShowOnlyWhatEachRoleMaySee(t *testing.T) {
	w := newWorld(t)
	cases := []struct {
		who  string
		as   account
		want string
	}{
		{"admin", w.admin, "[admin@a.test m1@a.test m2@a.test r1@a.test r1b@a.test r2@a.test]"},
		{"manager", w.m1, "[m1@a.test r1@a.test r1b@a.test]"},
		{"rep", w.r1, "[r1@a.test]"},
		{"other tenant admin", w.adminB, "[admin@b.test m@b.test r@b.test]"},
	}
	for _, c := range cases {
		r := w.h.do("GET", "/v1/users", c.as.access, nil)
		w.h.expect(r, 200, c.who)
		if got := fmt.Sprint(emails(t, r)); got != c.want {
			t.Errorf("%s sees %s, want %s", c.who, got, c.want)
		}
	}
	teams := map[string]int{"admin": 2, "manager": 1, "rep": 1, "other tenant admin": 1}
	for _, c := range cases {
		r := w.h.do("GET", "/v1/teams", c.as.access, nil)
		w.h.expect(r, 200, c.who+" teams")
		if n := len(r.json(t)["data"].([]any)); n != teams[c.who] {
			t.Errorf("%s sees %d teams, want %d", c.who, n, teams[c.who])
		}
	}
}

func TestUserListPagesWithAfterCursor(t *testing.T) {
	w := newWorld(t)
	var all []string
	after := ""
	for range 10 {
		r := w.h.do("GET", "/v1/users?limit=4&after="+after, w.admin.access, nil)
		w.h.expect(r, 200, "page")
		m := r.json(t)
		for _, u := range m["data"].([]any) {
			all = append(all, u.(map[string]any)["id"].(string))
		}
		next, ok := m["next_after"].(string)
		if !ok {
			break
		}
		after = next
	}
	if len(all) != 6 {
		t.Fatalf("paged through %d users, want 6", len(all))
	}
}

// TestUserTeamAndProfileRoutesByCallerAndTarget tries the user, team and
// /me routes as callers of each role on targets in their own team, another
// team, another tenant and themselves, and checks the status and the stored
// data: a refusal or a read changes no document, a success changes the user
// or team it names (a create adds one). The matrices of every route of the
// OpenAPI document are TestEveryRouteByRoleAndTarget and
// TestEveryCollectionRouteByRole (rolematrix*_test.go).
func TestUserTeamAndProfileRoutesByCallerAndTarget(t *testing.T) {
	w := newWorld(t)
	snap := newSnapshots(t, w.h)
	n := 0
	newRep := func(team string) map[string]any {
		n++
		return map[string]any{"email": fmt.Sprintf("new%d@a.test", n), "name": "New", "password": testPassword, "role": "rep", "team_id": team}
	}
	newManager := func() map[string]any {
		n++
		return map[string]any{"email": fmt.Sprintf("newm%d@a.test", n), "name": "New", "password": testPassword, "role": "manager"}
	}
	type tc struct {
		name   string
		as     account
		method string
		path   string
		body   any
		want   int
	}
	u := func(a account) string { return "/v1/users/" + a.id }
	cases := []tc{
		// read one user
		{"admin reads rep of any team", w.admin, "GET", u(w.r2), nil, 200},
		{"manager reads own team's rep", w.m1, "GET", u(w.r1), nil, 200},
		{"manager reads other team's rep", w.m1, "GET", u(w.r2), nil, 404},
		{"manager reads other manager", w.m1, "GET", u(w.m2), nil, 404},
		{"rep reads self", w.r1, "GET", u(w.r1), nil, 200},
		{"rep reads teammate", w.r1, "GET", u(w.r1b), nil, 404},
		{"rep reads own manager", w.r1, "GET", u(w.m1), nil, 404},
		{"other tenant admin reads rep", w.adminB, "GET", u(w.r1), nil, 404},
		{"other tenant rep reads admin", w.repB, "GET", u(w.admin), nil, 404},
		{"unknown id", w.admin, "GET", "/v1/users/nope", nil, 404},
		// change a user
		{"admin renames any rep", w.admin, "PATCH", u(w.r2), map[string]any{"name": "X"}, 200},
		{"admin promotes rep", w.admin, "PATCH", u(w.r1b), map[string]any{"role": "manager"}, 200},
		{"admin demotes self", w.admin, "PATCH", u(w.admin), map[string]any{"role": "rep"}, 403},
		{"admin deactivates self", w.admin, "PATCH", u(w.admin), map[string]any{"active": false}, 403},
		{"admin renames self", w.admin, "PATCH", u(w.admin), map[string]any{"name": "Boss"}, 200},
		{"manager renames own rep", w.m1, "PATCH", u(w.r1), map[string]any{"name": "X", "time_zone": "Asia/Shanghai"}, 200},
		{"manager promotes own rep", w.m1, "PATCH", u(w.r1), map[string]any{"role": "manager"}, 403},
		{"manager moves own rep to other team", w.m1, "PATCH", u(w.r1), map[string]any{"team_id": w.t2}, 403},
		{"manager renames other team's rep", w.m1, "PATCH", u(w.r2), map[string]any{"name": "X"}, 404},
		{"manager promotes self", w.m1, "PATCH", u(w.m1), map[string]any{"role": "admin"}, 403},
		{"rep renames self", w.r1, "PATCH", u(w.r1), map[string]any{"name": "Me", "locale": "zh-CN"}, 200},
		{"rep promotes self", w.r1, "PATCH", u(w.r1), map[string]any{"role": "admin"}, 403},
		{"rep changes own team", w.r1, "PATCH", u(w.r1), map[string]any{"team_id": w.t2}, 403},
		{"rep renames teammate", w.r1, "PATCH", u(w.r1b), map[string]any{"name": "X"}, 404},
		{"other tenant admin renames rep", w.adminB, "PATCH", u(w.r1), map[string]any{"name": "X"}, 404},
		// create users
		{"admin creates manager", w.admin, "POST", "/v1/users", newManager(), 201},
		{"admin creates rep in any team", w.admin, "POST", "/v1/users", newRep(w.t2), 201},
		{"manager creates rep in own team", w.m1, "POST", "/v1/users", newRep(w.t1), 201},
		{"manager creates rep in other team", w.m1, "POST", "/v1/users", newRep(w.t2), 403},
		{"manager creates manager", w.m1, "POST", "/v1/users", newManager(), 403},
		{"rep creates rep", w.r1, "POST", "/v1/users", newRep(w.t1), 403},
		{"other tenant admin creates rep in our team", w.adminB, "POST", "/v1/users", newRep(w.t1), 422},
		// teams
		{"admin creates team", w.admin, "POST", "/v1/teams", map[string]any{"name": "West"}, 201},
		{"manager creates team", w.m1, "POST", "/v1/teams", map[string]any{"name": "West"}, 403},
		{"rep creates team", w.r1, "POST", "/v1/teams", map[string]any{"name": "West"}, 403},
		{"admin reads any team", w.admin, "GET", "/v1/teams/" + w.t2, nil, 200},
		{"manager reads own team", w.m1, "GET", "/v1/teams/" + w.t1, nil, 200},
		{"manager reads other team", w.m1, "GET", "/v1/teams/" + w.t2, nil, 404},
		{"rep reads own team", w.r1, "GET", "/v1/teams/" + w.t1, nil, 200},
		{"rep reads other team", w.r1, "GET", "/v1/teams/" + w.t2, nil, 404},
		{"other tenant admin reads team", w.adminB, "GET", "/v1/teams/" + w.t1, nil, 404},
		// everyone has a profile
		{"rep reads me", w.r1, "GET", "/v1/me", nil, 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := w.h.with(t)
			before := snap.take(t)
			h.expect(h.do(c.method, c.path, c.as.access, c.body), c.want, c.name)
			changed := changedDocuments(before, snap.take(t))
			if c.want >= 300 || c.method == "GET" {
				if len(changed) > 0 {
					t.Fatalf("%s: answered %d and changed %v", c.name, c.want, changed)
				}
				return
			}
			// /v1/users/{id} changes that user; /v1/users and /v1/teams
			// add one.
			coll, id, _ := strings.Cut(strings.TrimPrefix(c.path, "/v1/"), "/")
			if !slices.ContainsFunc(changed, func(k string) bool {
				_, had := before[k]
				return k == coll+"/"+strconv.Quote(id) || id == "" && !had && strings.HasPrefix(k, coll+"/")
			}) {
				t.Fatalf("%s: succeeded, and changed no document of %s %s (changed %v)", c.name, coll, id, changed)
			}
		})
	}
}

// A tenant's data never changes through another tenant's requests, whatever
// they send: every write route of the API that names a record in its path is
// tried on tenant A's records by B's admin, with a body that would succeed
// for A's, and the stored data (every document of the database) must be the
// same afterwards. Writes that name A's records in their body (a merge, a
// sync push) are tried too.
func TestOtherTenantCannotChangeAnything(t *testing.T) {
	w := newWorld(t)
	h := w.h
	customer := seedPerson(t, w)
	n := models.Notification{UserID: w.r1.id, Kind: models.NotifyTaskDue, Title: "Follow-up due", Body: "Call Wang", CollapseKey: "task:x"}
	n.TenantID = w.admin.tenant
	notification, err := h.crm.Notify(context.Background(), n, models.IDFor("event-1"))
	if err != nil {
		t.Fatal(err)
	}
	h.call("POST", "/v1/devices", w.r1, map[string]any{"device_id": "phone-of-a", "fcm_token": "token-of-a", "platform": "android"}, 200)
	firstOf := func(path string) string {
		t.Helper()
		data := h.call("GET", path, w.admin, nil, 200)["data"].([]any)
		if len(data) == 0 {
			t.Fatalf("%s: tenant A has none", path)
		}
		return data[0].(map[string]any)["id"].(string)
	}
	customerOfB := h.newCustomer(w.repB, map[string]any{"name": "Bolt customer"})["id"].(string)
	phoneOfB := h.device(w.repB, "phone-of-b")

	// Each write route with a path parameter, by its OpenAPI path: the id of
	// A's record it names, and a body that A's admin could send.
	routes := map[string]struct {
		id   string
		body any
	}{
		"PATCH /v1/users/{id}":             {w.r1.id, map[string]any{"active": false, "name": "pwned", "role": "admin"}},
		"PATCH /v1/customers/{id}":         {customer, map[string]any{"name": "pwned"}},
		"DELETE /v1/customers/{id}":        {customer, nil},
		"POST /v1/customers/{id}/merge":    {customer, map[string]any{"from": []string{customerOfB}}},
		"POST /v1/customers/{id}/assign":   {customer, map[string]any{"owner_id": w.repB.id}},
		"POST /v1/customers/{id}/claim":    {customer, nil},
		"POST /v1/customers/{id}/release":  {customer, nil},
		"POST /v1/customers/{id}/erase":    {customer, nil},
		"PATCH /v1/contacts/{id}":          {firstOf("/v1/contacts"), map[string]any{"name": "pwned"}},
		"DELETE /v1/contacts/{id}":         {firstOf("/v1/contacts"), nil},
		"PATCH /v1/interactions/{id}":      {firstOf("/v1/interactions"), map[string]any{"content": "pwned"}},
		"DELETE /v1/interactions/{id}":     {firstOf("/v1/interactions"), nil},
		"PATCH /v1/tasks/{id}":             {firstOf("/v1/tasks"), map[string]any{"title": "pwned"}},
		"DELETE /v1/tasks/{id}":            {firstOf("/v1/tasks"), nil},
		"PATCH /v1/orders/{id}":            {firstOf("/v1/orders"), map[string]any{"note": "pwned"}},
		"DELETE /v1/orders/{id}":           {firstOf("/v1/orders"), nil},
		"PATCH /v1/payments/{id}":          {firstOf("/v1/payments"), map[string]any{"method": "cash"}},
		"DELETE /v1/payments/{id}":         {firstOf("/v1/payments"), nil},
		"PATCH /v1/tickets/{id}":           {firstOf("/v1/tickets"), map[string]any{"title": "pwned"}},
		"DELETE /v1/tickets/{id}":          {firstOf("/v1/tickets"), nil},
		"POST /v1/tickets/{id}/comments":   {firstOf("/v1/tickets"), map[string]any{"body": "pwned"}},
		"PATCH /v1/surveys/{id}":           {firstOf("/v1/surveys"), map[string]any{"comment": "pwned"}},
		"DELETE /v1/surveys/{id}":          {firstOf("/v1/surveys"), nil},
		"PATCH /v1/loyalty_entries/{id}":   {firstOf("/v1/loyalty_entries"), map[string]any{"reason": "pwned"}},
		"DELETE /v1/loyalty_entries/{id}":  {firstOf("/v1/loyalty_entries"), nil},
		"POST /v1/conflicts/{id}/resolve":  {firstOf("/v1/conflicts"), map[string]any{"action": "revert"}},
		"POST /v1/notifications/{id}/read": {notification.ID, nil},
		"DELETE /v1/devices/{id}":          {"phone-of-a", nil},
	}
	var writes []string
	for _, route := range documentedRoutes(t, h) {
		if !strings.HasPrefix(route, "GET ") && strings.Contains(route, "{") {
			writes = append(writes, route)
		}
	}
	if len(writes) == 0 {
		t.Fatal("no write route with a path parameter in the OpenAPI document")
	}

	// B may change B's own documents (a refused sync push still takes a
	// customer number of B's); nothing else may change.
	before := storedData(t, h, w.adminB.tenant)
	for _, route := range writes {
		c, ok := routes[route]
		if !ok {
			t.Errorf("%s: no case here; add one with a record of tenant A", route)
			continue
		}
		method, path, _ := strings.Cut(route, " ")
		path = strings.Replace(path, "{id}", c.id, 1)
		r := h.do(method, path, w.adminB.access, c.body)
		// The devices route acts on the caller's own devices: B has none of
		// that name, and nothing of A's is touched either way.
		if r.status != 404 && !(method == "DELETE" && strings.HasPrefix(path, "/v1/devices/")) {
			t.Errorf("%s %s by another tenant: status %d, want 404; body %s", method, path, r.status, r.body)
		}
	}
	// A's records named in the body of B's own writes.
	h.do("POST", "/v1/customers/"+customerOfB+"/merge", w.adminB.access, map[string]any{"from": []string{customer}})
	h.do("POST", "/v1/customers/"+customerOfB+"/assign", w.adminB.access, map[string]any{"owner_id": w.r1.id})
	h.do("POST", "/v1/contacts", w.adminB.access, map[string]any{"customer_id": customer, "name": "pwned"})
	h.do("POST", "/v1/payments", w.adminB.access, map[string]any{"order_id": firstOf("/v1/orders"), "method": "cash", "amount": 1})
	h.do("POST", "/v1/sync/push?last_pulled_at="+phoneOfB.cursor, phoneOfB.as.access, map[string]any{"changes": map[string]any{
		"customers": map[string]any{"updated": []any{updated(customer, map[string]any{"name": "pwned"})}}}})

	after := storedData(t, h, w.adminB.tenant)
	for coll, docs := range before {
		if !slices.Equal(docs, after[coll]) {
			t.Errorf("%s changed:\nbefore %v\nafter  %v", coll, docs, after[coll])
		}
	}
	for coll, docs := range after {
		if _, ok := before[coll]; !ok {
			t.Errorf("%s appeared: %v", coll, docs)
		}
	}
	h.expect(h.do("GET", "/v1/me", w.r1.access, nil), 200, "rep still active")
}

// storedData returns every document of the test's database but those of
// tenant except, collection by collection, each as extended JSON, in _id order.
func storedData(t *testing.T, h *harness, except string) map[string][]string {
	t.Helper()
	ctx := context.Background()
	client, err := mongo.Connect(ctx, options.Client().ApplyURI(env.MongoURI()))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(ctx)
	db := client.Database(h.store.DatabaseName())
	names, err := db.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, name := range names {
		cur, err := db.Collection(name).Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
		if err != nil {
			t.Fatal(err)
		}
		var docs []bson.Raw
		if err := cur.All(ctx, &docs); err != nil {
			t.Fatal(err)
		}
		for _, d := range docs {
			if tenant, ok := d.Lookup("tenant_id").StringValueOK(); ok && tenant == except {
				continue
			}
			out[name] = append(out[name], d.String())
		}
	}
	return out
}
