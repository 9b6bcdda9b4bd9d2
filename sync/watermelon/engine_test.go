package watermelon_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fieldcrm/fieldcrm/internal/app/apptest"
	"github.com/fieldcrm/fieldcrm/internal/crm"
	"github.com/fieldcrm/fieldcrm/models"
	"github.com/fieldcrm/fieldcrm/sync/watermelon"
)

// fixture is an engine over a tenant of its own: desk writes as the server
// sees a web console (no device), phone syncs as the tenant's admin.
type fixture struct {
	engine      *watermelon.Engine
	svc         *crm.Service
	desk, phone models.Actor
}

func newFixture(t testing.TB, pageSize int) *fixture {
	t.Helper()
	a := apptest.New(t, apptest.Config(), env.Store(t), env.Redis(t))
	tenant := models.Tenant{ID: models.NewID(), Name: "Protocol", CreatedAt: time.Now().UTC()}
	if err := a.Store.CreateTenant(context.Background(), tenant); err != nil {
		t.Fatal(err)
	}
	return &fixture{engine: watermelon.New(a.CRM, a.Sequencer, a.Store, pageSize), svc: a.CRM,
		desk:  models.Actor{UserID: "desk", TenantID: tenant.ID, Role: models.RoleAdmin},
		phone: models.Actor{UserID: "admin", TenantID: tenant.ID, Role: models.RoleAdmin, DeviceID: "phone"}}
}

func (f *fixture) customer(t *testing.T, name string) models.Customer {
	t.Helper()
	c, err := f.svc.CreateCustomer(context.Background(), f.desk, models.Customer{CustomerFields: models.CustomerFields{Name: name}}, false)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (f *fixture) retitle(t *testing.T, id, title string) {
	t.Helper()
	if _, err := f.svc.Customers.Update(context.Background(), f.desk, id, 0, func(dst any) error {
		dst.(*models.Customer).Title = title
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) pull(t testing.TB, from int64, mig *watermelon.Migration) watermelon.PullResult {
	t.Helper()
	got, err := f.engine.Pull(context.Background(), f.phone, from, mig)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func (f *fixture) push(t *testing.T, from int64, changes map[string]watermelon.PushTable) watermelon.PushResult {
	t.Helper()
	got, err := f.engine.Push(context.Background(), f.phone, from, watermelon.PushRequest{Changes: changes})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func ids(rows []map[string]any) []string {
	out := []string{}
	for _, r := range rows {
		out = append(out, r["id"].(string))
	}
	slices.Sort(out)
	return out
}

func sorted(s ...string) []string {
	s = append([]string{}, s...)
	slices.Sort(s)
	return s
}

func TestPullClassifiesCreatedUpdatedAndDeleted(t *testing.T) {
	f := newFixture(t, 0)
	ctx := context.Background()
	kept, edited, deleted := f.customer(t, "Kept"), f.customer(t, "Edited"), f.customer(t, "Deleted")

	first := f.pull(t, 0, nil)
	c := first.Changes["customers"]
	if got, want := ids(c.Created), sorted(kept.ID, edited.ID, deleted.ID); !slices.Equal(got, want) || len(c.Updated)+len(c.Deleted) != 0 {
		t.Fatalf("first sync: created %v, updated %v, deleted %v; want every customer created", got, ids(c.Updated), c.Deleted)
	}
	if first.HasMore || first.Timestamp < 1 {
		t.Fatalf("first sync: has_more %v, timestamp %d", first.HasMore, first.Timestamp)
	}

	added := f.customer(t, "Added")
	f.retitle(t, edited.ID, "changed")
	if err := f.svc.Customers.Delete(ctx, f.desk, deleted.ID, 0); err != nil {
		t.Fatal(err)
	}
	next := f.pull(t, first.Timestamp, nil)
	c = next.Changes["customers"]
	if !slices.Equal(ids(c.Created), []string{added.ID}) || !slices.Equal(ids(c.Updated), []string{edited.ID}) || !slices.Equal(c.Deleted, []string{deleted.ID}) {
		t.Fatalf("delta: created %v, updated %v, deleted %v; want %s created, %s updated, %s deleted",
			ids(c.Created), ids(c.Updated), c.Deleted, added.ID, edited.ID, deleted.ID)
	}
	if next.Timestamp <= first.Timestamp {
		t.Fatalf("the cursor did not move: %d after %d", next.Timestamp, first.Timestamp)
	}
	if again := f.pull(t, next.Timestamp, nil); len(again.Changes["customers"].Created)+len(again.Changes["customers"].Updated)+len(again.Changes["customers"].Deleted) != 0 || again.Timestamp != next.Timestamp {
		t.Fatalf("a pull with nothing new: %+v at %d", again.Changes["customers"], again.Timestamp)
	}
}

func TestPullPagesWithHasMoreAndBringsARoundsCreationsAsCreated(t *testing.T) {
	f := newFixture(t, 2)
	var want []string
	for _, name := range []string{"A", "B", "C", "D", "E"} {
		want = append(want, f.customer(t, name).ID)
	}
	pageThrough := func(from int64) (created, updated []string, cursor int64, pages int) {
		t.Helper()
		for more := true; more; pages++ {
			got := f.pull(t, from, nil)
			if n := len(got.Changes["customers"].Created) + len(got.Changes["customers"].Updated); n > 2 {
				t.Fatalf("a page of %d records with a page size of 2", n)
			}
			created = append(created, ids(got.Changes["customers"].Created)...)
			updated = append(updated, ids(got.Changes["customers"].Updated)...)
			if got.HasMore && got.Timestamp <= from {
				t.Fatalf("has_more with a cursor that did not move (%d)", got.Timestamp)
			}
			from, more = got.Timestamp, got.HasMore
		}
		slices.Sort(created)
		return created, updated, from, pages
	}
	created, updated, cursor, pages := pageThrough(0)
	if !slices.Equal(created, sorted(want...)) || len(updated) != 0 || pages != 3 {
		t.Fatalf("first sync in pages of 2: created %v, updated %v in %d pages; want all 5 created in 3", created, updated, pages)
	}

	// A later round pages too, and what was created in it comes as created
	// on every page, also after the first (the device had none of it).
	var later []string
	for _, name := range []string{"F", "G", "H"} {
		later = append(later, f.customer(t, name).ID)
	}
	f.retitle(t, want[0], "edited")
	created, updated, _, pages = pageThrough(cursor)
	if !slices.Equal(created, sorted(later...)) || !slices.Equal(updated, []string{want[0]}) || pages != 2 {
		t.Fatalf("second round in pages of 2: created %v, updated %v in %d pages; want %v created, %s updated, in 2", created, updated, pages, later, want[0])
	}
}

func TestMigrationPullSendsNewTablesAsCreatedAndNewColumnsAsUpdated(t *testing.T) {
	f := newFixture(t, 0)
	ctx := context.Background()
	c := f.customer(t, "Old customer")
	note, err := f.svc.Notify(ctx, models.Notification{Meta: models.Meta{TenantID: f.phone.TenantID}, UserID: f.phone.UserID,
		Kind: "task_due", Title: "Call back"}, "note-1")
	if err != nil {
		t.Fatal(err)
	}
	cursor := f.pull(t, 0, nil).Timestamp
	if got := f.pull(t, cursor, nil); len(got.Changes["customers"].Updated)+len(got.Changes["notifications"].Created) != 0 {
		t.Fatal("a plain pull at the latest cursor brings records")
	}

	got := f.pull(t, cursor, &watermelon.Migration{From: 1, Tables: []string{"notifications"}})
	if !slices.Equal(ids(got.Changes["notifications"].Created), []string{note.ID}) || len(got.Changes["customers"].Updated) != 0 {
		t.Fatalf("migration adding the notifications table: notifications created %v, customers updated %v; want %s created and no customer",
			ids(got.Changes["notifications"].Created), ids(got.Changes["customers"].Updated), note.ID)
	}
	got = f.pull(t, got.Timestamp, &watermelon.Migration{From: 2, Columns: []watermelon.MigrationColumns{{Table: "customers", Columns: []string{"external_ref"}}}})
	if !slices.Equal(ids(got.Changes["customers"].Updated), []string{c.ID}) || len(got.Changes["customers"].Created) != 0 {
		t.Fatalf("migration adding a customer column: created %v, updated %v; want %s updated (the device holds it)",
			ids(got.Changes["customers"].Created), ids(got.Changes["customers"].Updated), c.ID)
	}
	if err := watermelon.CheckMigration(watermelon.Migration{From: 0}); err == nil {
		t.Fatal("a migration from version 0 is accepted")
	}
}

func TestPushBreakingTheProtocolIsRefusedWholeAndWritesNothing(t *testing.T) {
	f := newFixture(t, 0)
	ctx := context.Background()
	cursor := f.pull(t, 0, nil).Timestamp
	good := map[string]any{"id": "c-good", "name": "Would be created", "_status": "created", "_changed": ""}
	for name, tc := range map[string]struct {
		from    int64
		changes map[string]watermelon.PushTable
	}{
		"no cursor":        {0, map[string]watermelon.PushTable{"customers": {Created: []map[string]any{good}}}},
		"unknown table":    {cursor, map[string]watermelon.PushTable{"customers": {Created: []map[string]any{good}}, "invoices": {}}},
		"unknown column":   {cursor, map[string]watermelon.PushTable{"customers": {Created: []map[string]any{good, {"id": "c2", "name": "x", "colour": "red"}}}}},
		"wrong type":       {cursor, map[string]watermelon.PushTable{"customers": {Created: []map[string]any{good, {"id": "c2", "name": 7.0}}}}},
		"bad id":           {cursor, map[string]watermelon.PushTable{"customers": {Created: []map[string]any{good, {"id": "c 2!", "name": "x"}}}}},
		"_changed unknown": {cursor, map[string]watermelon.PushTable{"customers": {Created: []map[string]any{good}, Updated: []map[string]any{{"id": "c3", "_changed": "colour"}}}}},
		"no changes":       {cursor, nil},
	} {
		_, err := f.engine.Push(ctx, f.phone, tc.from, watermelon.PushRequest{Changes: tc.changes})
		var ve *models.ValidationError
		if !errors.As(err, &ve) {
			t.Errorf("%s: %v; want a validation error", name, err)
		}
	}
	if exists, err := f.svc.Customers.Exists(ctx, f.phone.TenantID, "c-good"); err != nil || exists {
		t.Fatalf("a refused push stored its good row: %v, %v", exists, err)
	}
}

func TestPushRejectsRowsTheRulesRefuseAndAppliesTheRest(t *testing.T) {
	f := newFixture(t, 0)
	ctx := context.Background()
	cursor := f.pull(t, 0, nil).Timestamp
	got := f.push(t, cursor, map[string]watermelon.PushTable{
		"customers": {Created: []map[string]any{
			{"id": "c-ok", "name": "Fine", "_status": "created"},
			{"id": "c-no-name", "name": "", "_status": "created"},
		}},
		"interactions": {Created: []map[string]any{
			{"id": "i-ok", "customer_id": "c-ok", "channel": "visit", "occurred_at": 1767225600000.0, "_status": "created"},
			{"id": "i-bad-time", "customer_id": "c-ok", "channel": "visit", "occurred_at": 1e17, "_status": "created"},
			{"id": "i-no-customer", "customer_id": "c-missing", "channel": "visit", "occurred_at": 1767225600000.0, "_status": "created"},
		}},
	})
	for table, want := range map[string][]string{"customers": {"c-ok"}, "interactions": {"i-ok"}} {
		if !slices.Equal(got.Accepted[table], want) {
			t.Fatalf("%s accepted %v; want %v", table, got.Accepted[table], want)
		}
	}
	rejected := map[string]string{}
	for _, table := range []string{"customers", "interactions"} {
		for _, r := range got.Rejected[table] {
			rejected[r.ID] = r.Reason
		}
		if len(got.RejectedID[table]) != len(got.Rejected[table]) {
			t.Fatalf("%s: experimentalRejectedIds %v for rejections %v", table, got.RejectedID[table], got.Rejected[table])
		}
	}
	if len(rejected) != 3 || rejected["c-no-name"] == "" || rejected["i-bad-time"] == "" || rejected["i-no-customer"] == "" {
		t.Fatalf("rejected %v; want c-no-name, i-bad-time and i-no-customer, each with a reason", rejected)
	}
	for id, want := range map[string]bool{"c-ok": true, "c-no-name": false} {
		if exists, _ := f.svc.Customers.Exists(ctx, f.phone.TenantID, id); exists != want {
			t.Errorf("%s stored: %v; want %v", id, exists, want)
		}
	}
	for id, want := range map[string]bool{"i-ok": true, "i-bad-time": false, "i-no-customer": false} {
		if exists, _ := f.svc.Interactions.Exists(ctx, f.phone.TenantID, id); exists != want {
			t.Errorf("%s stored: %v; want %v", id, exists, want)
		}
	}
}

func TestPushConflictsAreJudgedFromThePushBase(t *testing.T) {
	f := newFixture(t, 0)
	c := f.customer(t, "Shared")
	cursor := f.pull(t, 0, nil).Timestamp
	cursor = f.pull(t, cursor, nil).Timestamp // the device now stands at cursor
	f.retitle(t, c.ID, "set at the desk")

	edit := func(col string, val any) map[string]watermelon.PushTable {
		return map[string]watermelon.PushTable{"customers": {Updated: []map[string]any{{"id": c.ID, col: val, "_status": "updated", "_changed": col}}}}
	}
	got := f.push(t, cursor, edit("title", "set on the phone"))
	if !slices.Equal(got.Conflicted["customers"], []string{c.ID}) {
		t.Fatalf("an edit of a column changed after the device's cursor: conflicted %v, accepted %v; want conflicted",
			got.Conflicted["customers"], got.Accepted["customers"])
	}
	got = f.push(t, cursor, edit("region", "north"))
	if !slices.Equal(got.Accepted["customers"], []string{c.ID}) {
		t.Fatalf("an edit of a column nobody else changed: accepted %v, conflicted %v; want accepted",
			got.Accepted["customers"], got.Conflicted["customers"])
	}

	// The conflict reaches the device as created; from a cursor after the
	// desk's change, the same edit is no conflict.
	after := f.pull(t, cursor, nil)
	conflicts := after.Changes["conflicts"].Created
	if len(conflicts) != 1 || conflicts[0]["record_id"] != c.ID || conflicts[0]["column"] != "title" {
		t.Fatalf("conflicts pulled: %v; want one on %s.title", conflicts, c.ID)
	}
	latest := f.pull(t, after.Timestamp, nil).Timestamp
	f.retitle(t, c.ID, "set at the desk again")
	latest = f.pull(t, latest, nil).Timestamp
	latest = f.pull(t, latest, nil).Timestamp
	got = f.push(t, latest, edit("title", "set on the phone again"))
	if !slices.Equal(got.Accepted["customers"], []string{c.ID}) {
		t.Fatalf("an edit from a cursor after every other change: accepted %v, conflicted %v; want accepted",
			got.Accepted["customers"], got.Conflicted["customers"])
	}
}

func TestServerTablesAndColumnsAreReadOnlyToDevices(t *testing.T) {
	f := newFixture(t, 0)
	ctx := context.Background()
	c := f.customer(t, "Numbered")
	cursor := f.pull(t, 0, nil).Timestamp
	got := f.push(t, cursor, map[string]watermelon.PushTable{
		"conflicts": {Created: []map[string]any{{"id": "k1", "table": "customers"}}, Updated: []map[string]any{{"id": "k2"}}, Deleted: []string{"k3"}},
		"customers": {Updated: []map[string]any{{"id": c.ID, "number": "C-FORGED", "title": "ok", "_changed": "number,title"}}},
	})
	if !slices.Equal(sorted(got.RejectedID["conflicts"]...), sorted("k1", "k2", "k3")) {
		t.Fatalf("pushed conflicts rejected %v; want every row", got.RejectedID["conflicts"])
	}
	stored, err := f.svc.Customers.Get(ctx, f.desk, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if stored.Number != c.Number || stored.Title != "ok" {
		t.Fatalf("after pushing number and title: number %q (was %q), title %q; want the number kept, the title written", stored.Number, c.Number, stored.Title)
	}
	for _, col := range f.engine.Schema().Tables[0].Columns {
		if col.Name == "number" && !col.ReadOnly {
			t.Fatal("the schema does not mark customers.number read-only")
		}
	}
}

func TestPushAppliesEditsOfDuplicateKeysInOrder(t *testing.T) {
	f := newFixture(t, 0)
	ctx := context.Background()
	first, second := f.customer(t, "First"), f.customer(t, "Second")
	cursor := f.pull(t, 0, nil).Timestamp
	phone := func(id string) map[string]any {
		return map[string]any{"id": id, "phones": `[{"number":"13800138000"}]`, "_changed": "phones"}
	}
	f.engine.PushParallel = 8
	got := f.push(t, cursor, map[string]watermelon.PushTable{"customers": {Updated: []map[string]any{phone(first.ID), phone(second.ID)}}})
	if len(got.Accepted["customers"])+len(got.Conflicted["customers"]) != 2 {
		t.Fatalf("outcomes %+v", got)
	}
	// Applied side by side, neither write would see the other's phone.
	a, _ := f.svc.Customers.Get(ctx, f.desk, first.ID)
	b, _ := f.svc.Customers.Get(ctx, f.desk, second.ID)
	if b.Duplicate == nil || !slices.Contains(b.Duplicate.CandidateIDs, first.ID) {
		t.Fatalf("the second customer given the first's phone in the same push is not flagged: first %+v, second %+v", a.Duplicate, b.Duplicate)
	}
}

// A page holds the first changes of all tables together, in the order they
// were made, however the tables' changes interleave: each table is read a
// chunk at a time and merged.
func TestPullPagesMergeTheTablesInTheOrderOfTheirChanges(t *testing.T) {
	f := newFixture(t, 4)
	var want []string // customer, its visit, the next customer…
	for i := range 6 {
		c := f.customer(t, fmt.Sprintf("Merged %d", i))
		visit, err := f.svc.Interactions.Create(context.Background(), f.desk, models.Interaction{
			ChildFields: models.ChildFields{CustomerID: c.ID}, Channel: "visit", OccurredAt: time.Now().UTC()})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, c.ID, visit.ID)
	}
	var got [][]string
	for from, more := int64(0), true; more; {
		page := f.pull(t, from, nil)
		var ids []string
		for _, table := range []string{"customers", "interactions"} {
			for _, row := range page.Changes[table].Created {
				ids = append(ids, row["id"].(string))
			}
		}
		got = append(got, ids)
		from, more = page.Timestamp, page.HasMore
	}
	if len(got) != 3 {
		t.Fatalf("%d pages of 12 records in pages of 4: %v", len(got), got)
	}
	for p, ids := range got {
		if !slices.Equal(sorted(ids...), sorted(want[4*p:4*p+4]...)) {
			t.Fatalf("page %d holds %v, want the changes %v", p+1, ids, want[4*p:4*p+4])
		}
	}
}

// numberSeq is the sequence a customer number was formatted from: the
// digits before its check digit.
func numberSeq(t *testing.T, number string) int {
	t.Helper()
	body := strings.TrimRightFunc(number[:max(len(number)-2, 0)], func(r rune) bool { return r >= '0' && r <= '9' })
	n, err := strconv.Atoi(number[len(body) : len(number)-2])
	if err != nil {
		t.Fatalf("customer number %q: %v", number, err)
	}
	return n
}

func TestPushCreatesSideBySideKeepTheirOrderNumbersAndSharedKeys(t *testing.T) {
	f := newFixture(t, 0)
	ctx := context.Background()
	cursor := f.pull(t, 0, nil).Timestamp
	const shared = `[{"number":"13900139000"}]`
	var rows []map[string]any
	var sharing []string
	for i := range 40 {
		id := fmt.Sprintf("c-%02d", i)
		row := map[string]any{"id": id, "name": "Customer " + id, "phones": fmt.Sprintf(`[{"number":"138%08d"}]`, i), "_status": "created"}
		if i%5 == 0 {
			row["phones"] = shared
			sharing = append(sharing, id)
		}
		if i == 7 {
			row["name"] = "" // refused alone
		}
		rows = append(rows, row)
	}
	// The same record sent twice in one push: the second is an update.
	rows = append(rows, map[string]any{"id": "c-03", "name": "Customer c-03, renamed", "_status": "created"})
	got := f.push(t, cursor, map[string]watermelon.PushTable{"customers": {Created: rows}})

	if len(got.Rejected["customers"]) != 1 || got.Rejected["customers"][0].ID != "c-07" {
		t.Fatalf("rejected %+v; want c-07 alone", got.Rejected["customers"])
	}
	if n := len(got.Accepted["customers"]) + len(got.Conflicted["customers"]); n != 40 {
		t.Fatalf("%d rows applied; want 40 (39 created, one updated)", n)
	}
	prev := 0
	for i, row := range rows[:40] {
		id := row["id"].(string)
		c, err := f.svc.Customers.Get(ctx, f.desk, id)
		if i == 7 {
			if !errors.Is(err, models.ErrNotFound) {
				t.Fatalf("the rejected row is stored: %v", err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		// Numbers follow the push's order, with none taken by the refused row.
		if seq := numberSeq(t, c.Number); prev != 0 && seq != prev+1 {
			t.Fatalf("%s has number %s after sequence %d: numbers must follow the push's order", id, c.Number, prev)
		} else {
			prev = seq
		}
		if id == "c-03" && c.Name != "Customer c-03, renamed" {
			t.Errorf("c-03 sent again in the push: name %q", c.Name)
		}
		// Each customer with the shared phone sees every one before it.
		if k := slices.Index(sharing, id); k > 0 {
			if c.Duplicate == nil {
				t.Fatalf("%s shares a phone with %v and is not flagged", id, sharing[:k])
			}
			for _, earlier := range sharing[:k] {
				if !slices.Contains(c.Duplicate.CandidateIDs, earlier) {
					t.Fatalf("%s is flagged with %v; want every earlier customer with its phone, %v", id, c.Duplicate.CandidateIDs, sharing[:k])
				}
			}
		}
	}
	// The phone's key holds every customer that has it.
	late, err := f.svc.CreateCustomer(ctx, f.desk, models.Customer{CustomerFields: models.CustomerFields{Name: "Late",
		ContactPoints: models.ContactPoints{Phones: []models.Phone{{Number: "13900139000"}}}}}, true)
	if err != nil {
		t.Fatal(err)
	}
	if late.Duplicate == nil || !slices.Equal(sorted(late.Duplicate.CandidateIDs...), sorted(sharing...)) {
		t.Fatalf("a later customer with the shared phone is flagged with %+v; want %v", late.Duplicate, sharing)
	}
}

func TestConcurrentPushesOfCustomersSharingAPhoneKeepItsKeyComplete(t *testing.T) {
	f := newFixture(t, 0)
	ctx := context.Background()
	cursor := f.pull(t, 0, nil).Timestamp
	var want []string
	pushes := make([][]map[string]any, 3)
	for p := range pushes {
		for i := range 30 {
			id := fmt.Sprintf("p%d-%02d", p, i)
			row := map[string]any{"id": id, "name": "Customer " + id, "phones": fmt.Sprintf(`[{"number":"137%02d%06d"}]`, p, i), "_status": "created"}
			if i%6 == 0 {
				row["phones"] = `[{"number":"13900139001"}]`
				want = append(want, id)
			}
			pushes[p] = append(pushes[p], row)
		}
	}
	errs := make(chan error, len(pushes))
	for _, rows := range pushes {
		go func() {
			_, err := f.engine.Push(ctx, f.phone, cursor, watermelon.PushRequest{Changes: map[string]watermelon.PushTable{"customers": {Created: rows}}})
			errs <- err
		}()
	}
	for range pushes {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	late, err := f.svc.CreateCustomer(ctx, f.desk, models.Customer{CustomerFields: models.CustomerFields{Name: "Late",
		ContactPoints: models.ContactPoints{Phones: []models.Phone{{Number: "13900139001"}}}}}, true)
	if err != nil {
		t.Fatal(err)
	}
	if late.Duplicate == nil || !slices.Equal(sorted(late.Duplicate.CandidateIDs...), sorted(want...)) {
		t.Fatalf("a later customer with the shared phone is flagged with %+v; want %v", late.Duplicate, want)
	}
	numbers := map[string]string{}
	for _, rows := range pushes {
		for _, row := range rows {
			c, err := f.svc.Customers.Get(ctx, f.desk, row["id"].(string))
			if err != nil {
				t.Fatal(err)
			}
			if other, taken := numbers[c.Number]; taken {
				t.Fatalf("%s and %s have number %s", other, c.ID, c.Number)
			}
			numbers[c.Number] = c.ID
		}
	}
}
