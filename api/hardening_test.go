package api_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fieldcrm/fieldcrm/internal/crm"
	"github.com/fieldcrm/fieldcrm/models"
)

// TestInvalidUTF8InQueryIsRefusedOnEveryListRoute sends a q (and other query
// parameters) holding bytes that are not UTF-8 to every list that searches: the
// answer is a 400 problem naming the parameter, never a 500 from the regexp engine.
func TestInvalidUTF8InQueryIsRefusedOnEveryListRoute(t *testing.T) {
	w := newWorld(t)
	h := w.h
	cust := h.newCustomer(w.r1, map[string]any{"name": "Acme"})["id"].(string)
	paths := []string{
		"/v1/customers?q=%ff%fe",
		"/v1/contacts?q=%ff%fe",
		"/v1/interactions?q=%ff%fe",
		"/v1/customers/" + cust + "/contacts?q=%ff%fe",
		"/v1/customers/" + cust + "/interactions?q=%ff%fe",
		"/v1/contacts?q=ab%c3",
		"/v1/exports/customers?q=%ff",
		"/v1/tasks?status=%ff",
		"/v1/users?role=%ff",
	}
	for _, p := range paths {
		for _, as := range []account{w.r1, w.admin} {
			r := h.do("GET", p, as.access, nil)
			h.expect(r, 400, "GET "+p)
			if !strings.Contains(string(r.body), "UTF-8") {
				t.Errorf("GET %s: the problem does not say what is wrong: %s", p, r.body)
			}
		}
	}
	// Callers of the CRM other than the API (sync, commands) get a
	// validation error from the text filters too, not a regexp failure.
	admin := models.Actor{TenantID: w.admin.tenant, UserID: w.admin.id, Role: models.RoleAdmin}
	var ve *models.ValidationError
	if _, err := h.crm.Contacts.List(context.Background(), admin, crm.ListOptions{Limit: 10, Filters: map[string]string{"q": "\xff\xfe"}}); !errors.As(err, &ve) {
		t.Fatalf("contacts q not UTF-8: %v", err)
	}
	if _, err := h.crm.Customers.List(context.Background(), admin, crm.ListOptions{Limit: 10, Filters: map[string]string{"q": "ab\xc3"}}); !errors.As(err, &ve) {
		t.Fatalf("customers q not UTF-8: %v", err)
	}
}

// TestDeviceTokenRegisteredInAnotherTenantLeavesTheFirstAlone registers, in
// tenant B, the FCM token a device of tenant A holds: A's device keeps it (B
// cannot silence A's reminders), B's user gets their own registration, and
// moving the token inside one tenant still takes it from the colleague there
// and from nobody else.
func TestDeviceTokenRegisteredInAnotherTenantLeavesTheFirstAlone(t *testing.T) {
	w := newWorld(t)
	h := w.h
	ctx := context.Background()
	h.call("POST", "/v1/devices", w.r1, map[string]any{"device_id": "phone-a", "fcm_token": "shared-token", "platform": "android"}, 200)
	h.call("POST", "/v1/devices", w.repB, map[string]any{"device_id": "phone-b", "fcm_token": "shared-token", "platform": "android"}, 200)
	if list := h.devicesOf(w.r1); len(list) != 1 || list[0].(map[string]any)["fcm_token"] != "shared-token" {
		t.Fatalf("tenant A's device after tenant B registered its token: %v", list)
	}
	if list := h.devicesOf(w.repB); len(list) != 1 {
		t.Fatalf("tenant B's device: %v", list)
	}
	ownerA, errA := h.store.TokenOwnerOf(ctx, w.admin.tenant, "shared-token")
	ownerB, errB := h.store.TokenOwnerOf(ctx, w.adminB.tenant, "shared-token")
	if errA != nil || errB != nil || ownerA.UserID != w.r1.id || ownerB.UserID != w.repB.id {
		t.Fatalf("token owners: A %+v %v, B %+v %v", ownerA, errA, ownerB, errB)
	}
	// Within tenant A the newest registration wins; B's stays.
	h.call("POST", "/v1/devices", w.r1b, map[string]any{"device_id": "phone-a2", "fcm_token": "shared-token", "platform": "android"}, 200)
	if list := h.devicesOf(w.r1); len(list) != 0 {
		t.Fatalf("the colleague in tenant A kept the moved token: %v", list)
	}
	if list := h.devicesOf(w.repB); len(list) != 1 {
		t.Fatalf("tenant B lost its device when the token moved inside tenant A: %v", list)
	}
	// Tenant B's user removing their device leaves tenant A's registration.
	h.call("DELETE", "/v1/devices/phone-b", w.repB, nil, 204)
	if list := h.devicesOf(w.r1b); len(list) != 1 {
		t.Fatalf("tenant A lost its device when tenant B removed its own: %v", list)
	}
	if o, err := h.store.TokenOwnerOf(ctx, w.admin.tenant, "shared-token"); err != nil || o.UserID != w.r1b.id {
		t.Fatalf("tenant A's token owner after B's removal: %+v %v", o, err)
	}
}

// TestReferencesMustNameVisibleRecordsOfTheSameTenantAndCustomer sends every
// reference field a record can carry (an interaction's contact_id, a survey's
// ticket_id) naming a record of another tenant, one the actor cannot see, one
// of another customer and one that does not exist: each is a 422 naming the
// field, and nothing is stored.
func TestReferencesMustNameVisibleRecordsOfTheSameTenantAndCustomer(t *testing.T) {
	w := newWorld(t)
	h := w.h
	custA := h.newCustomer(w.r1, map[string]any{"name": "Acme"})["id"].(string)
	otherA := h.newCustomer(w.r1, map[string]any{"name": "Other Acme"})["id"].(string)
	hidden := h.newCustomer(w.r2, map[string]any{"name": "South Co"})["id"].(string)
	contactA := h.call("POST", "/v1/contacts", w.r1, map[string]any{"customer_id": custA, "name": "Li Lei"}, 201)["id"].(string)
	contactOther := h.call("POST", "/v1/contacts", w.r1, map[string]any{"customer_id": otherA, "name": "Han Meimei"}, 201)["id"].(string)
	contactHidden := h.call("POST", "/v1/contacts", w.r2, map[string]any{"customer_id": hidden, "name": "Zhang San"}, 201)["id"].(string)
	ticketA := h.call("POST", "/v1/tickets", w.r1, map[string]any{"customer_id": custA, "type": "question", "title": "How?"}, 201)["id"].(string)
	ticketOther := h.call("POST", "/v1/tickets", w.r1, map[string]any{"customer_id": otherA, "type": "question", "title": "Why?"}, 201)["id"].(string)
	ticketHidden := h.call("POST", "/v1/tickets", w.r2, map[string]any{"customer_id": hidden, "type": "question", "title": "When?"}, 201)["id"].(string)

	custB := h.newCustomer(w.repB, map[string]any{"name": "Bolt Buyer"})["id"].(string)
	cases := []struct {
		name string
		as   account
		path string
		body map[string]any
		fld  string
	}{
		{"contact of another tenant", w.repB, "/v1/interactions", map[string]any{"customer_id": custB, "channel": "phone", "contact_id": contactA}, "contact_id"},
		{"ticket of another tenant", w.repB, "/v1/surveys", map[string]any{"customer_id": custB, "csat": 4, "ticket_id": ticketA}, "ticket_id"},
		{"contact the rep cannot see", w.r1, "/v1/interactions", map[string]any{"customer_id": custA, "channel": "phone", "contact_id": contactHidden}, "contact_id"},
		{"ticket the rep cannot see", w.r1, "/v1/surveys", map[string]any{"customer_id": custA, "csat": 4, "ticket_id": ticketHidden}, "ticket_id"},
		{"contact of another customer", w.r1, "/v1/interactions", map[string]any{"customer_id": custA, "channel": "phone", "contact_id": contactOther}, "contact_id"},
		{"ticket of another customer", w.r1, "/v1/surveys", map[string]any{"customer_id": custA, "csat": 4, "ticket_id": ticketOther}, "ticket_id"},
		{"contact that does not exist", w.r1, "/v1/interactions", map[string]any{"customer_id": custA, "channel": "phone", "contact_id": "nope"}, "contact_id"},
		{"ticket that does not exist", w.r1, "/v1/surveys", map[string]any{"customer_id": custA, "csat": 4, "ticket_id": "nope"}, "ticket_id"},
	}
	for _, c := range cases {
		r := h.do("POST", c.path, c.as.access, c.body)
		h.expect(r, 422, c.name)
		if !strings.Contains(string(r.body), `"field":"`+c.fld+`"`) {
			t.Errorf("%s: the problem does not name %s: %s", c.name, c.fld, r.body)
		}
	}
	for _, coll := range []string{"interactions", "surveys"} {
		for _, as := range []account{w.r1, w.repB} {
			if got := h.call("GET", "/v1/"+coll, as, nil, 200)["data"].([]any); len(got) != 0 {
				t.Fatalf("%s were stored: %v", coll, got)
			}
		}
	}
	// The right references are taken, and an edit to a foreign one is refused.
	i := h.call("POST", "/v1/interactions", w.r1, map[string]any{"customer_id": custA, "channel": "phone", "contact_id": contactA}, 201)["id"].(string)
	h.call("POST", "/v1/surveys", w.r1, map[string]any{"customer_id": custA, "csat": 4, "ticket_id": ticketA}, 201)
	h.expect(h.do("PATCH", "/v1/interactions/"+i, w.r1.access, map[string]any{"contact_id": contactOther}), 422, "edit to another customer's contact")
	if got := h.call("GET", "/v1/interactions/"+i, w.r1, nil, 200); got["contact_id"] != contactA {
		t.Fatalf("the refused edit changed the interaction: %v", got)
	}

	// Sync takes the same path: a device of tenant B pushing A's contact is
	// refused for that record; a contact and a visit created offline in one
	// push (parents are applied first) are taken.
	phone := h.device(w.repB, "phone-b")
	res := phone.push(map[string]any{
		"contacts": map[string]any{"created": []any{map[string]any{"id": "offlinecontact01", "customer_id": custB, "name": "Wang Wu"}}},
		"interactions": map[string]any{"created": []any{
			map[string]any{"id": "foreigncontact01", "customer_id": custB, "channel": "phone", "contact_id": contactA},
			map[string]any{"id": "offlinevisit0001", "customer_id": custB, "channel": "visit", "contact_id": "offlinecontact01"},
		}},
	}, 200)
	if got := fmt.Sprint(res["experimentalRejectedIds"].(map[string]any)["interactions"]); got != "[foreigncontact01]" {
		t.Fatalf("push result %v", res)
	}
	h.call("GET", "/v1/interactions/offlinevisit0001", w.repB, nil, 200)
	h.call("GET", "/v1/interactions/foreigncontact01", w.repB, nil, 404)
}

// TestManagerCannotGiveANewRepAnotherTeamsManager creates reps as a manager:
// naming the manager of another team is refused and creates nobody; naming
// themselves or nobody (the team's manager by default) works. Admins choose freely.
func TestManagerCannotGiveANewRepAnotherTeamsManager(t *testing.T) {
	w := newWorld(t)
	h := w.h
	body := map[string]any{"email": "new@a.test", "name": "New Rep", "password": testPassword, "role": "rep", "team_id": w.t1, "manager_id": w.m2.id}
	r := h.do("POST", "/v1/users", w.m1.access, body)
	h.expect(r, 403, "manager names another team's manager")
	if !strings.Contains(string(r.body), "manager") {
		t.Fatalf("the problem does not say why: %s", r.body)
	}
	for _, u := range h.call("GET", "/v1/users", w.admin, nil, 200)["data"].([]any) {
		if u.(map[string]any)["email"] == "new@a.test" {
			t.Fatal("the refused rep was created")
		}
	}
	body["manager_id"] = w.m1.id
	if got := h.call("POST", "/v1/users", w.m1, body, 201); got["manager_id"] != w.m1.id {
		t.Fatalf("manager naming themselves: %v", got)
	}
	delete(body, "manager_id")
	body["email"] = "new2@a.test"
	if got := h.call("POST", "/v1/users", w.m1, body, 201); got["manager_id"] != w.m1.id {
		t.Fatalf("default manager: %v", got)
	}
	body["email"], body["manager_id"] = "new3@a.test", w.m2.id
	h.call("POST", "/v1/users", w.admin, body, 201)
}

// TestTicketsFollowTheDocumentedWorkflow checks docs/api.md's workflow (new →
// assigned → in_progress → resolved → closed; resolved or closed reopen to
// in_progress): a ticket cannot be created past assigned, nor skip a step,
// and a refused move changes nothing.
func TestTicketsFollowTheDocumentedWorkflow(t *testing.T) {
	w := newWorld(t)
	h := w.h
	cust := h.newCustomer(w.r1, map[string]any{"name": "Acme"})["id"].(string)
	for _, status := range []string{"in_progress", "resolved", "closed"} {
		r := h.do("POST", "/v1/tickets", w.r1.access, map[string]any{"customer_id": cust, "type": "question", "title": "Created " + status, "status": status})
		h.expect(r, 422, "create a ticket "+status)
		if !strings.Contains(string(r.body), `"field":"status"`) {
			t.Fatalf("create %s: the problem does not name status: %s", status, r.body)
		}
	}
	if got := h.call("GET", "/v1/tickets", w.r1, nil, 200)["data"].([]any); len(got) != 0 {
		t.Fatalf("refused tickets were stored: %v", got)
	}
	id := h.call("POST", "/v1/tickets", w.r1, map[string]any{"customer_id": cust, "type": "question", "title": "How?"}, 201)["id"].(string)
	for _, skip := range []string{"closed", "resolved", "new"} {
		h.expect(h.do("PATCH", "/v1/tickets/"+id, w.r1.access, map[string]any{"status": skip}), 422, "assigned → "+skip)
	}
	if got := h.call("GET", "/v1/tickets/"+id, w.r1, nil, 200); got["status"] != "assigned" || got["version"] != float64(1) {
		t.Fatalf("a refused move changed the ticket: %v", got)
	}
	for _, step := range []string{"in_progress", "resolved", "closed", "in_progress", "resolved", "in_progress"} {
		h.call("PATCH", "/v1/tickets/"+id, w.r1, map[string]any{"status": step}, 200)
	}
	h.expect(h.do("PATCH", "/v1/tickets/"+id, w.r1.access, map[string]any{"status": "closed"}), 422, "in_progress → closed")

	// A device's push takes the same path: a ticket created closed and a
	// move from assigned straight to closed are rejected, each row alone.
	fresh := h.call("POST", "/v1/tickets", w.r1, map[string]any{"customer_id": cust, "type": "question", "title": "Synced"}, 201)["id"].(string)
	phone := h.device(w.r1, "phone-a")
	res := phone.push(map[string]any{"tickets": map[string]any{
		"created": []any{map[string]any{"id": "closedticket0001", "customer_id": cust, "type": "question", "title": "Born closed", "status": "closed"}},
		"updated": []any{updated(fresh, map[string]any{"status": "closed"})},
	}}, 200)
	var rejected []string
	for _, id := range res["experimentalRejectedIds"].(map[string]any)["tickets"].([]any) {
		rejected = append(rejected, id.(string))
	}
	if want := []string{"closedticket0001", fresh}; !slices.Equal(slices.Sorted(slices.Values(rejected)), slices.Sorted(slices.Values(want))) {
		t.Fatalf("pushed workflow skips: rejected %v, want %v (%v)", rejected, want, res)
	}
	h.call("GET", "/v1/tickets/closedticket0001", w.r1, nil, 404)
	if got := h.call("GET", "/v1/tickets/"+fresh, w.r1, nil, 200); got["status"] != "assigned" || got["version"] != float64(1) {
		t.Fatalf("a refused pushed move changed the ticket: %v", got)
	}
}

// TestNullBodyIsRefusedAndChangesNothing sends the JSON body null, which
// encoding/json reads as "no fields": every route that takes a body answers 400
// and nothing is written.
func TestNullBodyIsRefusedAndChangesNothing(t *testing.T) {
	w := newWorld(t)
	h := w.h
	cust := h.newCustomer(w.r1, map[string]any{"name": "Acme"})["id"].(string)
	cases := []struct{ method, path string }{
		{"PATCH", "/v1/customers/" + cust},
		{"PATCH", "/v1/users/" + w.r1.id},
		{"PATCH", "/v1/settings"},
		{"POST", "/v1/customers"},
		{"POST", "/v1/customers/" + cust + "/assign"},
		{"POST", "/v1/devices"},
	}
	for _, body := range []string{"null", " null \n"} {
		for _, c := range cases {
			r := h.do(c.method, c.path, w.admin.access, body)
			h.expect(r, 400, c.method+" "+c.path+" with "+body)
			if !strings.Contains(string(r.body), "JSON object") {
				t.Errorf("%s %s: the problem does not say what to send: %s", c.method, c.path, r.body)
			}
		}
	}
	if got := h.call("GET", "/v1/customers/"+cust, w.r1, nil, 200); got["version"] != float64(1) {
		t.Fatalf("the customer changed: %v", got)
	}
	if got := h.call("GET", "/v1/customers", w.admin, nil, 200)["data"].([]any); len(got) != 1 {
		t.Fatalf("a customer was created: %v", got)
	}
}

// TestEveryListRefusesUnknownQueryParameters sends each list a parameter it
// does not take (a typo of a real one, as clients make): every list answers
// the same 422 the record lists always did, naming the parameter, instead of
// ignoring it and answering an unfiltered list.
func TestEveryListRefusesUnknownQueryParameters(t *testing.T) {
	w := newWorld(t)
	h := w.h
	cust := h.newCustomer(w.r1, map[string]any{"name": "Acme"})["id"].(string)
	task := h.call("POST", "/v1/tasks", w.r1, map[string]any{"customer_id": cust, "title": "Call", "due_at": h.clock.Now().Add(time.Hour).Format(time.RFC3339)}, 201)["id"].(string)
	paths := []string{
		"/v1/users?rol=rep",
		"/v1/teams?name=North",
		"/v1/audit?colection=customers",
		"/v1/devices?platfrom=ios",
		"/v1/customers/" + cust + "/timeline?kind=orders",
		"/v1/tasks/" + task + "/reminders?sent=true",
		"/v1/duplicates?nmae=x",
		"/v1/conflicts?tabel=customers",
		"/v1/notifications?raed=false",
		"/v1/exports/customers?stag=lead",
		"/v1/customers?stag=lead",
		"/v1/reports/customers?tem_id=x",
	}
	for _, p := range paths {
		r := h.do("GET", p, w.admin.access, nil)
		h.expect(r, 422, "GET "+p)
		name := p[strings.Index(p, "?")+1 : strings.Index(p, "=")]
		if !strings.Contains(string(r.body), `"field":"`+name+`"`) {
			t.Errorf("GET %s: the problem does not name %s: %s", p, name, r.body)
		}
	}
	// Known parameters still work.
	for _, p := range []string{"/v1/users?role=rep&active=true&limit=5", "/v1/audit?collection=customers&limit=5", "/v1/teams", "/v1/devices"} {
		h.call("GET", p, w.admin, nil, 200)
	}
}

// TestImportRowInAnotherEncodingIsAFailedRow imports CSV files that mix
// encodings (rows pasted from another export): a UTF-8 file with a GBK row and
// a GBK file with a UTF-8 row. The row that does not decode is a failed row
// saying why; the others are imported; nothing is stored with U+FFFD.
func TestImportRowInAnotherEncodingIsAFailedRow(t *testing.T) {
	w := newWorld(t)
	h := w.h
	utf8File := append([]byte("名称,备注\r\n张三贸易,一\r\n"), gbk(t, "李四商行,二\r\n")...)
	utf8File = append(utf8File, []byte("王五公司,三\r\n")...)
	gbFile := append(gbk(t, "名称,备注\r\n赵六贸易,一\r\n"), []byte("孙七中,二\r\n")...)
	gbFile = append(gbFile, gbk(t, "周八公司,三\r\n")...)
	for name, file := range map[string][]byte{"utf8-with-gbk-row.csv": utf8File, "gbk-with-utf8-row.csv": gbFile} {
		im := h.runImport(w.admin, name, file, map[string]string{"kind": "customers", "mapping": `{"columns":{"名称":"name","备注":"industry"}}`})
		if got := counts(im); got != "total 3 created 2 merged 0 skipped 0 failed 1" {
			t.Errorf("%s: %s; failures %v", name, got, im["failures"])
			continue
		}
		f := im["failures"].([]any)[0].(map[string]any)
		if f["line"] != float64(3) || !strings.Contains(f["reason"].(string), "encoding") {
			t.Errorf("%s: failure %v", name, f)
		}
	}
	for _, c := range h.call("GET", "/v1/customers?limit=200", w.admin, nil, 200)["data"].([]any) {
		if n := c.(map[string]any)["name"].(string); strings.ContainsRune(n, '\uFFFD') {
			t.Errorf("a customer was stored with U+FFFD: %q", n)
		}
	}
}

// TestImportsOfADeadProcessReadInterrupted leaves imports running as a
// process that stopped would, then starts another: at start-up it marks as
// interrupted the imports whose process is gone (every other one when it is
// the only process; those whose heartbeat stopped when replicas share the
// database), and leaves alone one a live replica is running. A graceful stop
// marks the process's own imports interrupted, and their runs cannot
// overwrite that.
func TestImportsOfADeadProcessReadInterrupted(t *testing.T) {
	w := newWorld(t)
	h := w.h
	ctx := context.Background()
	running := func(id string, updated time.Time) models.Import {
		im := models.Import{ID: id, TenantID: w.admin.tenant, UserID: w.admin.id, Kind: "customers", FileName: id + ".csv",
			State: models.ImportRunning, Total: 10, Done: 3, StartedAt: updated, UpdatedAt: updated, Runner: "gone/1"}
		if err := h.store.SaveImport(ctx, im); err != nil {
			t.Fatal(err)
		}
		return im
	}
	state := func(id string) string {
		return h.call("GET", "/v1/imports/"+id, w.admin, nil, 200)["state"].(string)
	}
	now := h.clock.Now()
	running("crashed-just-now", now)
	if got := state("crashed-just-now"); got != "running" {
		t.Fatalf("before the restart: %s", got)
	}
	// A restarted single process: every import it did not start is dead.
	restarted := h.twin()
	if n, err := restarted.crm.InterruptDeadImports(ctx, false); err != nil || n != 1 {
		t.Fatalf("start-up sweep: %d, %v", n, err)
	}
	if got := state("crashed-just-now"); got != "interrupted" {
		t.Fatalf("after the restart: %s", got)
	}
	if im, _ := h.store.Import(ctx, w.admin.tenant, "crashed-just-now"); im.State != models.ImportInterrupted || im.Error == "" {
		t.Fatalf("the stored import: %+v", im)
	}

	// Replicas sharing the database: a fresh heartbeat belongs to a live one.
	running("live-elsewhere", now)
	running("silent-for-long", now.Add(-10*time.Minute))
	if n, err := restarted.crm.InterruptDeadImports(ctx, true); err != nil || n != 1 {
		t.Fatalf("sweep among replicas: %d, %v", n, err)
	}
	if a, b := state("live-elsewhere"), state("silent-for-long"); a != "running" || b != "interrupted" {
		t.Fatalf("among replicas: live %s, silent %s", a, b)
	}

	// A graceful stop: the process's own running import becomes interrupted
	// and its run's later saves do not undo that.
	mine := models.Import{ID: "mine", TenantID: w.admin.tenant, UserID: w.admin.id, Kind: "customers", State: models.ImportRunning,
		StartedAt: now, UpdatedAt: now}
	if err := restarted.crm.SaveImport(ctx, mine); err != nil {
		t.Fatal(err)
	}
	if n, err := restarted.crm.StopImports(ctx); err != nil || n != 1 {
		t.Fatalf("stop: %d, %v", n, err)
	}
	mine.State, mine.Error = models.ImportFailed, "database closed"
	if err := restarted.crm.SaveImport(ctx, mine); err == nil {
		t.Fatal("a stopped import's run saved again")
	}
	if got := state("mine"); got != "interrupted" {
		t.Fatalf("after a graceful stop: %s", got)
	}
}

// TestPasswordChangeEndsTheUsersOtherSessions signs a rep in on two devices
// and changes the password from the first: the second device's refresh and
// access tokens stop working, the first keeps its session. An admin setting
// someone's password ends all of that user's sessions.
func TestPasswordChangeEndsTheUsersOtherSessions(t *testing.T) {
	w := newWorld(t)
	h := w.h
	phone := w.r1 // signed in by the harness
	tablet := h.login(w.r1.email, w.r1.password)
	h.call("POST", "/v1/devices", phone, map[string]any{"device_id": "phone-1", "fcm_token": "token-phone", "platform": "android"}, 200)
	h.call("POST", "/v1/devices", tablet, map[string]any{"device_id": "tablet", "fcm_token": "token-tablet", "platform": "ios"}, 200)
	h.call("PATCH", "/v1/users/"+w.r1.id, phone, map[string]any{"password": "a brand new passphrase", "current_password": testPassword}, 200)

	h.expect(h.do("GET", "/v1/me", tablet.access, nil), 401, "the other session's access token")
	h.expect(h.do("POST", "/v1/auth/refresh", "", map[string]any{"refresh_token": tablet.refresh}), 401, "the other session's refresh token")
	h.call("GET", "/v1/me", phone, nil, 200)
	if list := h.devicesOf(phone); len(list) != 1 || list[0].(map[string]any)["device_id"] != "phone-1" {
		t.Fatalf("devices after the password change: %v", list)
	}
	r := h.do("POST", "/v1/auth/refresh", "", map[string]any{"refresh_token": phone.refresh})
	h.expect(r, 200, "the changing session's refresh token")
	fresh := r.json(t)["access_token"].(string)
	h.expect(h.do("GET", "/v1/me", fresh, nil), 200, "the changing session after refresh")

	// An admin resets the password: every session of the user ends.
	h.call("PATCH", "/v1/users/"+w.r1.id, w.admin, map[string]any{"password": "reset by the admin 1"}, 200)
	h.expect(h.do("GET", "/v1/me", fresh, nil), 401, "the user's session after an admin reset")
	h.call("GET", "/v1/me", w.admin, nil, 200)
}
