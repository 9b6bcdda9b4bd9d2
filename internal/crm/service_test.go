package crm_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/fieldcrm/fieldcrm/internal/app"
	"github.com/fieldcrm/fieldcrm/internal/app/apptest"
	"github.com/fieldcrm/fieldcrm/internal/crm"
	"github.com/fieldcrm/fieldcrm/internal/store"
	"github.com/fieldcrm/fieldcrm/internal/testenv"
	"github.com/fieldcrm/fieldcrm/models"
)

// people are the actors of one test tenant: an admin, a manager of team-1,
// two reps of team-1, and a manager of team-2.
type people struct {
	admin, manager, rep, rep2, otherManager models.Actor
}

// newTenant returns the application's CRM over a tenant of its own.
func newTenant(t *testing.T) (*crm.Service, people) {
	t.Helper()
	svc, p, _ := newTenantWithStore(t)
	return svc, p
}

// newTenantWithStore is newTenant, with the store under the CRM for tests
// that must write what no CRM method writes; opts change the application
// (its clock).
func newTenantWithStore(t *testing.T, opts ...app.Option) (*crm.Service, people, *store.Store) {
	t.Helper()
	st := env.Store(t)
	svc := apptest.New(t, apptest.Config(), st, env.Redis(t), opts...).CRM
	tenant := models.Tenant{ID: models.NewID(), Name: "Rules", CreatedAt: time.Now().UTC()}
	if err := st.CreateTenant(context.Background(), tenant); err != nil {
		t.Fatal(err)
	}
	id := tenant.ID
	return svc, people{
		admin:        models.Actor{UserID: "admin", TenantID: id, Role: models.RoleAdmin},
		manager:      models.Actor{UserID: "mgr-1", TenantID: id, Role: models.RoleManager, TeamID: "team-1", ManagedTeamIDs: []string{"team-1"}},
		rep:          models.Actor{UserID: "rep-1", TenantID: id, Role: models.RoleRep, TeamID: "team-1", DeviceID: "rep-1-phone"},
		rep2:         models.Actor{UserID: "rep-2", TenantID: id, Role: models.RoleRep, TeamID: "team-1", DeviceID: "rep-2-phone"},
		otherManager: models.Actor{UserID: "mgr-2", TenantID: id, Role: models.RoleManager, TeamID: "team-2", ManagedTeamIDs: []string{"team-2"}},
	}, st
}

func person(name, phone string) models.Customer {
	c := models.Customer{CustomerFields: models.CustomerFields{Name: name, Kind: models.KindPerson}}
	if phone != "" {
		c.Phones = []models.Phone{{Number: phone}}
	}
	return c
}

func mustCreate(t *testing.T, svc *crm.Service, a models.Actor, c models.Customer) models.Customer {
	t.Helper()
	created, err := svc.CreateCustomer(context.Background(), a, c, false)
	if err != nil {
		t.Fatal(err)
	}
	return created
}

func TestCreateCustomerMatchingAnotherIsRefusedOrFlagged(t *testing.T) {
	svc, p := newTenant(t)
	ctx := context.Background()
	first := mustCreate(t, svc, p.rep, person("王伟", "13800138000"))

	_, err := svc.CreateCustomer(ctx, p.rep, person("Wang Wei", "+86 138 0013 8000"), false)
	var dup *models.DuplicateError
	if !errors.As(err, &dup) || len(dup.Candidates) != 1 || dup.Candidates[0].ID != first.ID {
		t.Fatalf("a second customer with the same phone: %v; want a duplicate error naming %s", err, first.ID)
	}
	flagged, err := svc.CreateCustomer(ctx, p.rep, person("Wang Wei", "+86 138 0013 8000"), true)
	if err != nil {
		t.Fatal(err)
	}
	if flagged.Duplicate == nil || !slices.Contains(flagged.Duplicate.CandidateIDs, first.ID) || len(flagged.Duplicate.Reasons) == 0 {
		t.Fatalf("created with flagging: duplicate flag %+v; want it to name %s and why", flagged.Duplicate, first.ID)
	}
	other := mustCreate(t, svc, p.rep, person("李娜", "13900139000"))
	if other.Duplicate != nil {
		t.Fatalf("a customer matching nobody is flagged: %+v", other.Duplicate)
	}
	// The flag is the server's: it goes once the match no longer holds.
	fixed, err := svc.Customers.Update(ctx, p.rep, flagged.ID, 0, func(dst any) error {
		dst.(*models.Customer).Phones = []models.Phone{{Number: "13700137000"}}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if fixed.Duplicate != nil {
		t.Fatalf("the phone changed to one nobody has, the flag stays: %+v", fixed.Duplicate)
	}
}

func TestCustomerNumbersAreDistinctValidAndInCreationOrder(t *testing.T) {
	svc, p := newTenant(t)
	var numbers []string
	for i := range 4 {
		c := mustCreate(t, svc, p.rep, person("Customer "+string(rune('A'+i)), ""))
		if !models.ValidCustomerNumber(c.Number) {
			t.Fatalf("customer number %q fails its own check digit", c.Number)
		}
		numbers = append(numbers, c.Number)
	}
	if !slices.IsSorted(numbers) || len(slices.Compact(slices.Clone(numbers))) != len(numbers) {
		t.Fatalf("numbers %v: want distinct, in creation order", numbers)
	}
}

func TestVisibilityIsOwnForRepsTeamForManagersAllForAdmins(t *testing.T) {
	svc, p := newTenant(t)
	ctx := context.Background()
	c := mustCreate(t, svc, p.rep, person("Own", ""))
	for _, tc := range []struct {
		who   string
		actor models.Actor
		sees  bool
	}{
		{"its owner", p.rep, true},
		{"another rep of the team", p.rep2, false},
		{"the team's manager", p.manager, true},
		{"another team's manager", p.otherManager, false},
		{"an admin", p.admin, true},
	} {
		_, err := svc.Customers.Get(ctx, tc.actor, c.ID)
		if tc.sees != (err == nil) {
			t.Errorf("%s reading the rep's customer: %v; want seen %v", tc.who, err, tc.sees)
		}
		if !tc.sees && !errors.Is(err, models.ErrNotFound) {
			t.Errorf("%s is refused with %v; want not found, so the record's existence stays hidden", tc.who, err)
		}
		page, err := svc.Customers.List(ctx, tc.actor, crm.ListOptions{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		listed := slices.ContainsFunc(page.Data, func(x models.Customer) bool { return x.ID == c.ID })
		if listed != tc.sees {
			t.Errorf("%s lists the rep's customer: %v; want %v", tc.who, listed, tc.sees)
		}
	}
	_, err := svc.Customers.Update(ctx, p.rep2, c.ID, 0, func(dst any) error { dst.(*models.Customer).Title = "not mine"; return nil })
	if !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("another rep editing the customer: %v; want not found", err)
	}
}

func TestDeletingACustomerDeletesItsRecords(t *testing.T) {
	svc, p := newTenant(t)
	ctx := context.Background()
	c := mustCreate(t, svc, p.rep, models.Customer{CustomerFields: models.CustomerFields{Name: "远景贸易", CompanyName: "远景贸易", Kind: models.KindCompany}})
	visit, err := svc.Interactions.Create(ctx, p.rep, models.Interaction{ChildFields: models.ChildFields{CustomerID: c.ID},
		Channel: "visit", OccurredAt: time.Now().UTC().Add(-time.Hour), Content: "first visit"})
	if err != nil {
		t.Fatal(err)
	}
	contact, err := svc.Contacts.Create(ctx, p.rep, models.Contact{ChildFields: models.ChildFields{CustomerID: c.ID}, Name: "Buyer"})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Customers.Delete(ctx, p.rep, c.ID, 0); err != nil {
		t.Fatal(err)
	}
	if v, err := svc.Interactions.Get(ctx, p.rep, visit.ID); err != nil || v.DeletedAt == nil {
		t.Fatalf("the customer's visit after its delete: %v, deleted at %v; want a tombstone", err, v.DeletedAt)
	}
	if k, err := svc.Contacts.Get(ctx, p.rep, contact.ID); err != nil || k.DeletedAt == nil {
		t.Fatalf("the customer's contact after its delete: %v, deleted at %v; want a tombstone", err, k.DeletedAt)
	}
}

func TestConflictPolicyIsPerColumn(t *testing.T) {
	svc, _ := newTenant(t)
	for col, want := range map[string]string{"tags": models.PolicyUnion, "name": models.PolicyLastWriter, "phones": models.PolicyLastWriter} {
		if got := svc.Customers.ConflictPolicy(col); got != want {
			t.Errorf("customers.%s: policy %s; want %s", col, got, want)
		}
	}
	if got := svc.Tasks.ConflictPolicy("tags"); got != models.PolicyLastWriter {
		t.Errorf("tasks.tags: policy %s; want %s (only customers merge tags)", got, models.PolicyLastWriter)
	}
	if !svc.Customers.EditReadsOthers([]string{"title", "phones"}) || svc.Customers.EditReadsOthers([]string{"title", "tags"}) {
		t.Error("customers: an edit of phones must be applied in order with others, one of title and tags need not")
	}
	if svc.Tasks.EditReadsOthers([]string{"title", "name"}) {
		t.Error("tasks: no column reads other tasks")
	}
}

// staleEdit is a device's edit of a customer judged from a cursor before the
// customer's last change by someone else.
func staleEdit(id string, cols map[string]any) crm.DeviceEdit {
	e := crm.DeviceEdit{ID: id, Columns: map[string]json.RawMessage{}, Base: 1, Pulled: 1}
	for k, v := range cols {
		e.Columns[k] = jsonOf(v)
		e.Changed = append(e.Changed, k)
	}
	return e
}

func TestADevicesEditMeetingAnotherIsSettledByTheColumnsPolicyAndRecorded(t *testing.T) {
	svc, p := newTenant(t)
	ctx := context.Background()
	in := person("Tagged", "")
	in.Tags = []string{"vip"}
	c := mustCreate(t, svc, p.manager, in) // owned by the manager, edited by the manager's device
	phone := p.manager
	phone.DeviceID = "mgr-phone"

	out, err := svc.Customers.ApplyDeviceEdit(ctx, phone, staleEdit(c.ID, map[string]any{"tags": []string{"north"}, "name": "Renamed"}))
	if err != nil {
		t.Fatal(err)
	}
	got, err := svc.Customers.Get(ctx, p.manager, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Tags, []string{"vip", "north"}) || got.Name != "Renamed" {
		t.Fatalf("after the device's edit: tags %v, name %q; want [vip north] (union) and Renamed (last writer)", got.Tags, got.Name)
	}
	policies := map[string]string{}
	for _, k := range out.Conflicts {
		policies[k.Column] = k.Policy + "/" + k.Kept
	}
	if policies["tags"] != models.PolicyUnion+"/union" || policies["name"] != models.PolicyLastWriter+"/device" || len(policies) != 2 {
		t.Fatalf("conflicts %v; want tags union and name last writer", policies)
	}
	stored, err := svc.Conflicts.List(ctx, p.manager, crm.ListOptions{Filters: map[string]string{"record_id": c.ID}, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(stored.Data) != 2 {
		t.Fatalf("%d conflicts stored; want the 2 returned", len(stored.Data))
	}

	// The same device's later edit, judged from after its first: no conflict.
	again := staleEdit(c.ID, map[string]any{"name": "Renamed again"})
	again.Base, again.Pulled = 1<<40, 1<<40
	out, err = svc.Customers.ApplyDeviceEdit(ctx, phone, again)
	if err != nil || len(out.Conflicts) != 0 {
		t.Fatalf("an edit from a base after every change: %v, conflicts %v; want none", err, out.Conflicts)
	}
}

func TestRevertGoesThroughTheRecordsRules(t *testing.T) {
	svc, p := newTenant(t)
	ctx := context.Background()
	c := mustCreate(t, svc, p.manager, person("Before", ""))
	out, err := svc.Customers.ApplyDeviceEdit(ctx, p.rep, staleEdit(c.ID, map[string]any{"name": "After"}))
	if !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("a rep's device editing the manager's customer: %v, %v; want not found", out, err)
	}
	phone := p.manager
	phone.DeviceID = "mgr-phone"
	out, err = svc.Customers.ApplyDeviceEdit(ctx, phone, staleEdit(c.ID, map[string]any{"name": "After"}))
	if err != nil || len(out.Conflicts) != 1 {
		t.Fatalf("the device's edit: %v, conflicts %v; want one", err, out.Conflicts)
	}
	conflict := out.Conflicts[0]

	if _, err := svc.ResolveConflict(ctx, p.manager, conflict.ID, "undo"); !isValidation(err) {
		t.Fatalf("an unknown action: %v; want a validation error", err)
	}
	if _, err := svc.ResolveConflict(ctx, p.otherManager, conflict.ID, crm.ResolveRevert); !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("another team's manager reverting: %v; want not found", err)
	}
	resolved, err := svc.ResolveConflict(ctx, p.manager, conflict.ID, crm.ResolveRevert)
	if err != nil {
		t.Fatal(err)
	}
	if resolved.Resolution != crm.ResolveRevert || resolved.ResolvedBy != p.manager.UserID {
		t.Fatalf("resolved as %q by %q", resolved.Resolution, resolved.ResolvedBy)
	}
	got, _ := svc.Customers.Get(ctx, p.manager, c.ID)
	if got.Name != "Before" {
		t.Fatalf("after revert the name is %q; want Before", got.Name)
	}
	if _, err := svc.ResolveConflict(ctx, p.manager, conflict.ID, crm.ResolveKeep); !errors.Is(err, models.ErrConflict) {
		t.Fatalf("resolving twice: %v; want a conflict error", err)
	}
}

// A conflict row the server did not make (one a device pushed before the
// conflicts table was read-only to devices, still stored) is reverted only
// through the record's own rules: a server field (a customer's number), an
// append-only record (a loyalty entry's points) or a record the resolver
// cannot see (the row claiming the resolver's team) is refused, and nothing
// changes. The attack this stops: a manager forged a conflict on another
// team's customer and reverted it; the same two steps set a number to
// HACKED-0001 and a loyalty entry's 390 points to 999999.
func TestRevertOfAForgedConflictChangesNothing(t *testing.T) {
	svc, p, st := newTenantWithStore(t)
	ctx := context.Background()
	c := mustCreate(t, svc, p.rep, person("Numbered", ""))
	entry, err := svc.LoyaltyEntries.Create(ctx, p.rep, models.LoyaltyEntry{
		ChildFields: models.ChildFields{CustomerID: c.ID}, Kind: models.PointsEarn, Points: 390, Reason: "order"})
	if err != nil {
		t.Fatal(err)
	}
	before, _ := svc.Customers.Get(ctx, p.admin, c.ID)
	forge := func(by models.Actor, table, record, column, value string) string {
		t.Helper()
		now := time.Now().UTC()
		f := models.Conflict{Meta: models.Meta{ID: models.NewID(), TenantID: by.TenantID, OwnerID: by.UserID, TeamID: by.TeamID,
			Version: 1, CreatedAt: now, CreatedBy: by.UserID, UpdatedAt: now, UpdatedBy: by.UserID},
			Table: table, RecordID: record, Column: column, ServerValue: value, DeviceValue: `"x"`, Kept: "device", Policy: models.PolicyLastWriter}
		if err := st.Insert(ctx, store.Conflicts, &f.Meta, f, models.AuditEntry{Action: "create"}); err != nil {
			t.Fatal(err)
		}
		return f.ID
	}
	for _, tc := range []struct {
		name   string
		by     models.Actor
		table  string
		record string
		column string
		value  string
	}{
		{"a customer's number", p.manager, store.Customers, c.ID, "number", `"HACKED-0001"`},
		{"a loyalty entry's points", p.manager, store.LoyaltyEntries, entry.ID, "points", "999999"},
		{"the owner of another team's customer", p.otherManager, store.Customers, c.ID, "owner_id", `"mgr-2"`},
		{"the name of another team's customer", p.otherManager, store.Customers, c.ID, "name", `"Taken"`},
	} {
		id := forge(tc.by, tc.table, tc.record, tc.column, tc.value)
		if _, err := svc.ResolveConflict(ctx, tc.by, id, crm.ResolveRevert); err == nil {
			t.Errorf("%s: a forged conflict was reverted", tc.name)
		}
		if got, _ := svc.Conflicts.Get(ctx, p.admin, id); got.Resolution != "" {
			t.Errorf("%s: the refused revert resolved the conflict as %q", tc.name, got.Resolution)
		}
	}
	after, _ := svc.Customers.Get(ctx, p.admin, c.ID)
	if after.Version != before.Version || after.Number != before.Number || after.OwnerID != p.rep.UserID || after.Name != "Numbered" {
		t.Fatalf("the customer changed: version %d → %d, number %q → %q, owner %q, name %q",
			before.Version, after.Version, before.Number, after.Number, after.OwnerID, after.Name)
	}
	if got, _ := svc.LoyaltyEntries.Get(ctx, p.admin, entry.ID); got.Points != 390 || got.Version != entry.Version {
		t.Fatalf("the loyalty entry changed: %d points, version %d", got.Points, got.Version)
	}
	if balance, sum := balanceAndLedger(t, svc, p.admin, c.ID); balance != 390 || sum != 390 {
		t.Fatalf("balance %d, ledger %d; want 390", balance, sum)
	}
}

func TestRevertRestoresAValueOnlyThroughValidation(t *testing.T) {
	svc, p := newTenant(t)
	ctx := context.Background()
	c := mustCreate(t, svc, p.manager, person("Has a phone", "13800138000"))
	// Someone else takes the phone; the customer's old value, reverted,
	// would be a duplicate: a revert is an edit like any other, so it flags it.
	phone := p.manager
	phone.DeviceID = "mgr-phone"
	out, err := svc.Customers.ApplyDeviceEdit(ctx, phone, staleEdit(c.ID, map[string]any{"phones": []map[string]string{{"number": "13900139000"}}}))
	if err != nil || len(out.Conflicts) != 1 {
		t.Fatalf("the device's edit: %v, conflicts %v", err, out.Conflicts)
	}
	other := mustCreate(t, svc, p.manager, person("Took the number", "13800138000"))
	if _, err := svc.ResolveConflict(ctx, p.manager, out.Conflicts[0].ID, crm.ResolveRevert); err != nil {
		t.Fatal(err)
	}
	got, _ := svc.Customers.Get(ctx, p.manager, c.ID)
	if got.Duplicate == nil || !slices.Contains(got.Duplicate.CandidateIDs, other.ID) {
		t.Fatalf("the reverted phone is shared with %s, yet the duplicate flag is %+v", other.ID, got.Duplicate)
	}
}

func TestAnEditMeetingADeleteIsKeptAndTheDeleteStands(t *testing.T) {
	svc, p := newTenant(t)
	ctx := context.Background()
	c := mustCreate(t, svc, p.manager, person("Deleted", ""))
	if err := svc.Customers.Delete(ctx, p.manager, c.ID, 0); err != nil {
		t.Fatal(err)
	}
	phone := p.manager
	phone.DeviceID = "mgr-phone"
	out, err := svc.Customers.ApplyDeviceEdit(ctx, phone, staleEdit(c.ID, map[string]any{"title": "edited offline"}))
	if err != nil || len(out.Conflicts) != 1 || out.Conflicts[0].Policy != models.PolicyDeleteWins || out.Conflicts[0].Column != "*" {
		t.Fatalf("an edit of a deleted customer: %v, conflicts %+v; want one delete_wins conflict on *", err, out.Conflicts)
	}
	if got, _ := svc.Customers.Get(ctx, p.manager, c.ID); got.DeletedAt == nil {
		t.Fatal("the delete did not stand")
	}
	if _, err := svc.ResolveConflict(ctx, p.manager, out.Conflicts[0].ID, crm.ResolveRevert); err != nil {
		t.Fatal(err)
	}
	got, _ := svc.Customers.Get(ctx, p.manager, c.ID)
	if got.DeletedAt != nil || got.Title != "edited offline" {
		t.Fatalf("after revert: deleted at %v, title %q; want back, with the edit", got.DeletedAt, got.Title)
	}
}

func TestARedemptionBeyondTheBalanceIsRefusedAndMovesNothing(t *testing.T) {
	svc, p := newTenant(t)
	ctx := context.Background()
	c := mustCreate(t, svc, p.rep, person("Points", ""))
	if err := points(svc, p.rep, c.ID, models.PointsEarn, 100); err != nil {
		t.Fatal(err)
	}
	if err := points(svc, p.rep, c.ID, models.PointsRedeem, 101); !isValidation(err) {
		t.Fatalf("redeeming 101 of 100 points: %v; want a validation error", err)
	}
	if err := points(svc, p.rep, c.ID, models.PointsRedeem, 60); err != nil {
		t.Fatal(err)
	}
	if balance, sum := balanceAndLedger(t, svc, p.rep, c.ID); balance != 40 || sum != 40 {
		t.Fatalf("balance %d, ledger %d; want 40 and 40", balance, sum)
	}
	got, _ := svc.Customers.Get(ctx, p.rep, c.ID)
	if len(got.Loyalty.Held) != 0 {
		t.Fatalf("holds left after settled writes: %+v", got.Loyalty.Held)
	}
}

func TestImportCustomerOutcomes(t *testing.T) {
	svc, p := newTenant(t)
	ctx := context.Background()
	existing := mustCreate(t, svc, p.rep, person("Existing", "13800138000"))
	rowID := func(key string) string { return crm.ImportedID(p.rep.TenantID, crm.ImportCustomers, key) }

	out, err := svc.ImportCustomer(ctx, p.rep, rowID("a"), person("New one", "13900139000"), crm.OnDuplicateSkip, true)
	if err != nil || out.Action != crm.RowCreated {
		t.Fatalf("dry run of a new row: %+v, %v; want created", out, err)
	}
	if _, err := svc.Customers.Get(ctx, p.rep, rowID("a")); !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("a dry run stored the row: %v", err)
	}
	out, err = svc.ImportCustomer(ctx, p.rep, rowID("a"), person("New one", "13900139000"), crm.OnDuplicateSkip, false)
	if err != nil || out.Action != crm.RowCreated || out.CustomerID != rowID("a") {
		t.Fatalf("a new row: %+v, %v; want created under the row's id", out, err)
	}
	out, err = svc.ImportCustomer(ctx, p.rep, rowID("a"), person("New one", "13900139000"), crm.OnDuplicateSkip, false)
	if err != nil || out.Action != crm.RowSkipped || out.Reason != "imported before" {
		t.Fatalf("the same row again: %+v, %v; want skipped as imported before", out, err)
	}
	out, err = svc.ImportCustomer(ctx, p.rep, rowID("b"), person("Same phone", "13800138000"), crm.OnDuplicateSkip, false)
	if err != nil || out.Action != crm.RowSkipped || out.MatchedID != existing.ID {
		t.Fatalf("a row matching a customer, skip: %+v, %v; want skipped, matching %s", out, err, existing.ID)
	}
	row := person("Same phone", "13800138000")
	row.Title = "from the sheet"
	out, err = svc.ImportCustomer(ctx, p.rep, rowID("c"), row, crm.OnDuplicateMerge, false)
	if err != nil || out.Action != crm.RowMerged || out.MatchedID != existing.ID {
		t.Fatalf("a row matching a customer, merge: %+v, %v; want merged into %s", out, err, existing.ID)
	}
	if got, _ := svc.Customers.Get(ctx, p.rep, existing.ID); got.Title != "from the sheet" || got.Name != "Existing" {
		t.Fatalf("merged: title %q, name %q; want the empty title filled, the name kept", got.Title, got.Name)
	}
	out, err = svc.ImportCustomer(ctx, p.rep, rowID("d"), person("Same phone", "13800138000"), crm.OnDuplicateFlag, false)
	if err != nil || out.Action != crm.RowCreated {
		t.Fatalf("a row matching a customer, flag: %+v, %v; want created", out, err)
	}
	if got, _ := svc.Customers.Get(ctx, p.rep, rowID("d")); got.Duplicate == nil {
		t.Fatal("a row created with flag is not flagged")
	}
	if _, err := svc.ImportCustomer(ctx, p.rep, rowID("e"), models.Customer{}, crm.OnDuplicateSkip, false); !isValidation(err) {
		t.Fatalf("a row with no name: %v; want a validation error", err)
	}
}

// TestImportCustomersSideBySideAsOneAfterAnother: a file's rows imported
// side by side (64 at once) come out as imported one after another (one at
// a time, in a second tenant): the same action for every row, matching the
// same earlier row or stored customer, the same rows flagged with the same
// candidates, the same failures; in chains of rows sharing a phone or an
// e-mail, with rows repeated (the same id) and rows refused.
func TestImportCustomersSideBySideAsOneAfterAnother(t *testing.T) {
	ctx := context.Background()
	const n = 400
	rows := func() ([]string, []models.Customer) {
		keys := make([]string, n)
		cs := make([]models.Customer, n)
		for i := range n {
			keys[i] = fmt.Sprintf("row-%d", i)
			switch {
			case i%37 == 5:
				keys[i] = fmt.Sprintf("row-%d", i-3) // the same row as one before
			case i%41 == 7:
				cs[i] = person("", "13700000000") // no name: refused
				continue
			}
			c := person(fmt.Sprintf("客户 %d", i), fmt.Sprintf("1390000%04d", i%97)) // chains of shared phones
			if i%5 == 0 {
				c.Emails = []models.Email{{Address: fmt.Sprintf("team%d@example.com", i%7)}} // links across chains
			}
			if i%11 == 0 {
				c.Phones = []models.Phone{{Number: "13800138000"}} // the stored customer's phone
			}
			cs[i] = c
		}
		return keys, cs
	}
	type result struct {
		action, matched, failure string
		candidates               []string
	}
	importAll := func(t *testing.T, onDuplicate string, parallel int) []result {
		svc, p := newTenant(t)
		existing := mustCreate(t, svc, p.rep, person("Existing", "13800138000"))
		keys, cs := rows()
		ids := make([]string, n)
		which := map[string]string{existing.ID: "stored"}
		for i, k := range keys {
			ids[i] = crm.ImportedID(p.rep.TenantID, crm.ImportCustomers, k)
			if _, ok := which[ids[i]]; !ok {
				which[ids[i]] = k
			}
		}
		outs, errs := svc.ImportCustomers(ctx, p.rep, ids, cs, onDuplicate, false, parallel)
		got := make([]result, n)
		for i := range n {
			got[i] = result{action: outs[i].Action, matched: which[outs[i].MatchedID]}
			if errs[i] != nil {
				if !isValidation(errs[i]) {
					t.Fatalf("row %d: %v; want imported or refused as invalid", i, errs[i])
				}
				got[i].failure = errs[i].Error()
				continue
			}
			if outs[i].Action != crm.RowCreated {
				continue
			}
			c, err := svc.Customers.Get(ctx, p.rep, ids[i])
			if err != nil {
				t.Fatalf("row %d created: %v", i, err)
			}
			if c.Duplicate != nil {
				for _, id := range c.Duplicate.CandidateIDs {
					got[i].candidates = append(got[i].candidates, which[id])
				}
				slices.Sort(got[i].candidates)
			}
		}
		return got
	}
	for _, onDuplicate := range []string{crm.OnDuplicateSkip, crm.OnDuplicateFlag} {
		t.Run(onDuplicate, func(t *testing.T) {
			together, alone := importAll(t, onDuplicate, 64), importAll(t, onDuplicate, 1)
			actions := map[string]int{}
			for i := range n {
				if !reflect.DeepEqual(together[i], alone[i]) {
					t.Errorf("row %d side by side: %+v; one after another: %+v", i, together[i], alone[i])
				}
				actions[alone[i].action]++
			}
			if actions[crm.RowCreated] == 0 || (onDuplicate == crm.OnDuplicateSkip && actions[crm.RowSkipped] < 100) {
				t.Fatalf("outcomes %v: the file does not test what it should", actions)
			}
		})
	}
}

// TestImportRecordsSideBySideAsOneAfterAnother: rows of payments imported
// side by side (64 at once) give what one after another gives: each order's
// payments are accepted in file order until they would exceed what it owes,
// and refused after; each customer's balance counts every payment on its
// two orders; a row naming no known order, or repeated, fares as alone.
// Interactions on a few customers leave each with its latest one.
func TestImportRecordsSideBySideAsOneAfterAnother(t *testing.T) {
	ctx := context.Background()
	const orders, perOrder = 6, 30
	type result struct{ action, failure string }
	importPayments := func(t *testing.T, parallel int) []result {
		svc, p := newTenant(t)
		var orderIDs []string
		customers := make([]models.Customer, 3)
		for i := range customers {
			customers[i] = mustCreate(t, svc, p.rep, person(fmt.Sprintf("客户 %d", i), fmt.Sprintf("1390000%04d", i)))
		}
		for i := range orders { // two orders a customer
			o, err := svc.Orders.Create(ctx, p.rep, models.Order{ChildFields: models.ChildFields{CustomerID: customers[i%3].ID},
				Items: []models.LineItem{{Product: "Kit", Quantity: 1, UnitPrice: 1000}}})
			must(t, err)
			orderIDs = append(orderIDs, o.ID)
		}
		ri, err := svc.StartRecordImport(ctx, p.rep)
		must(t, err)
		var ids []string
		var rows []crm.RecordRow
		for i := range orders * perOrder {
			order := orderIDs[i%orders]
			if i%29 == 3 {
				order = "no-such-order"
			}
			amount := int64(40 + 5*(i%7)) // each order's payments pass its 1,000 about two thirds through
			key := fmt.Sprint("p-", i)
			if i%31 == 30 {
				key = fmt.Sprint("p-", i-1) // the row before, again
			}
			ids = append(ids, crm.ImportedID(p.rep.TenantID, crm.ImportPayments, key))
			rows = append(rows, crm.RecordRow{Order: order, Record: &models.Payment{Method: "cash", Amount: amount}})
		}
		outs, errs := ri.ImportAll(ctx, ids, rows, false, parallel)
		got := make([]result, len(rows)+len(customers))
		for i, c := range customers { // what each customer owes, from all its payments
			c, err := svc.Customers.Get(ctx, p.rep, c.ID)
			must(t, err)
			got[len(rows)+i].action = fmt.Sprint("balance ", c.Balance)
		}
		for i := range rows {
			got[i].action = outs[i].Action
			if errs[i] != nil {
				if !isValidation(errs[i]) {
					t.Fatalf("row %d: %v; want imported or refused as invalid", i, errs[i])
				}
				got[i].failure = errs[i].Error()
			}
		}
		// Interactions, 40 on three customers, at times out of order: each
		// customer's last interaction is its latest.
		ri, err = svc.StartRecordImport(ctx, p.rep)
		must(t, err)
		base := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
		latest := map[string]time.Time{}
		ids, rows = nil, nil
		for i := range 40 {
			c, at := customers[i%3].ID, base.Add(time.Duration((i*17)%40)*time.Hour)
			if at.After(latest[c]) {
				latest[c] = at
			}
			ids = append(ids, crm.ImportedID(p.rep.TenantID, crm.ImportInteractions, fmt.Sprint("i-", i)))
			rows = append(rows, crm.RecordRow{Customer: c, Record: &models.Interaction{Channel: "phone", OccurredAt: at, Content: fmt.Sprint("call ", i)}})
		}
		_, errs = ri.ImportAll(ctx, ids, rows, false, parallel)
		for _, err := range errs {
			must(t, err)
		}
		for id, want := range latest {
			c, err := svc.Customers.Get(ctx, p.rep, id)
			must(t, err)
			if c.LastInteractionAt == nil || !c.LastInteractionAt.Equal(want) {
				t.Errorf("customer %s: last interaction %v after the import; want %v", id, c.LastInteractionAt, want)
			}
		}
		return got
	}
	together, alone := importPayments(t, 64), importPayments(t, 1)
	counts := map[string]int{}
	for i := range together {
		if together[i] != alone[i] {
			t.Errorf("payment row %d side by side: %+v; one after another: %+v", i, together[i], alone[i])
		}
		counts[alone[i].action+alone[i].failure]++
	}
	if counts[crm.RowCreated] < orders*10 || len(counts) < 3 {
		t.Fatalf("outcomes %v: the file does not test what it should", counts)
	}
}

func isValidation(err error) bool {
	var v *models.ValidationError
	return errors.As(err, &v)
}

// TestMergeMovesTheRecordsToTheSurvivorAndTombstonesTheOthersNamingIt: the
// records of the customers merged away (a payment through its order too)
// move to the survivor and its owner; the others become tombstones naming it
// in merged_into; the same merge again changes nothing. A merge naming the
// survivor, no one, too many, a customer the actor does not see or one
// merged into another is refused and moves nothing.
func TestMergeMovesTheRecordsToTheSurvivorAndTombstonesTheOthersNamingIt(t *testing.T) {
	svc, p, st := newTenantWithStore(t)
	storeUsers(t, st, p)
	ctx := context.Background()
	survivor := mustCreate(t, svc, p.rep2, company("Survivor"))
	// children are the records of the customers merged away, by collection.
	children := map[string][]string{}
	var from []string
	for _, name := range []string{"Merged A", "Merged B"} {
		o := mustCreate(t, svc, p.rep, company(name))
		from = append(from, o.ID)
		parent := models.ChildFields{CustomerID: o.ID}
		contact, err := svc.Contacts.Create(ctx, p.rep, models.Contact{ChildFields: parent, Name: "Li Na"})
		must(t, err)
		task, err := svc.Tasks.Create(ctx, p.rep, models.Task{ChildFields: parent, Title: "Call back", DueAt: time.Now().Add(72 * time.Hour)})
		must(t, err)
		order, err := svc.Orders.Create(ctx, p.rep, models.Order{ChildFields: parent, Items: []models.LineItem{{Product: "Kit", Quantity: 1, UnitPrice: 900}}})
		must(t, err)
		payment, err := svc.Payments.Create(ctx, p.rep, models.Payment{OrderID: order.ID, Method: "cash", Amount: 400})
		must(t, err)
		children["contacts"] = append(children["contacts"], contact.ID)
		children["tasks"] = append(children["tasks"], task.ID)
		children["orders"] = append(children["orders"], order.ID)
		children["payments"] = append(children["payments"], payment.ID)
	}
	// state is each record's customer and owner, and each customer's
	// merged_into and whether it is deleted, by id.
	state := func() map[string]string {
		t.Helper()
		out := map[string]string{}
		meta := func(id string, m *models.Meta, parent string) { out[id] = parent + " " + m.OwnerID }
		for _, id := range children["contacts"] {
			c, err := svc.Contacts.Get(ctx, p.admin, id)
			must(t, err)
			meta(id, &c.Meta, c.CustomerID)
		}
		for _, id := range children["tasks"] {
			c, err := svc.Tasks.Get(ctx, p.admin, id)
			must(t, err)
			meta(id, &c.Meta, c.CustomerID)
		}
		for _, id := range children["orders"] {
			c, err := svc.Orders.Get(ctx, p.admin, id)
			must(t, err)
			meta(id, &c.Meta, c.CustomerID)
		}
		for _, id := range children["payments"] {
			c, err := svc.Payments.Get(ctx, p.admin, id)
			must(t, err)
			meta(id, &c.Meta, c.CustomerID)
		}
		for _, id := range append([]string{survivor.ID}, from...) {
			c, err := svc.Customers.Get(ctx, p.admin, id)
			must(t, err)
			out[id] = fmt.Sprintf("merged into %q, deleted %v", c.MergedInto, c.Deleted())
		}
		return out
	}
	before := state()

	merged := mustCreate(t, svc, p.rep, company("Merged elsewhere"))
	elsewhere := mustCreate(t, svc, p.rep, company("Elsewhere"))
	if _, err := svc.Merge(ctx, p.manager, elsewhere.ID, []string{merged.ID}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		what string
		as   models.Actor
		from []string
		want string // "validation" or "not found"
	}{
		{"the survivor itself", p.manager, append(slices.Clone(from), survivor.ID), "validation"},
		{"no one", p.manager, nil, "validation"},
		{"21 customers", p.manager, slices.Repeat(from[:1], 21), "validation"},
		{"an unknown id", p.manager, append(slices.Clone(from), "nobody"), "validation"},
		{"a customer merged into another", p.manager, append(slices.Clone(from), merged.ID), "validation"},
		{"by a rep who does not see the survivor", p.rep, from, "not found"},
		{"by another team's manager", p.otherManager, from, "not found"},
	} {
		_, err := svc.Merge(ctx, c.as, survivor.ID, c.from)
		var ve *models.ValidationError
		if c.want == "validation" && !errors.As(err, &ve) || c.want == "not found" && !errors.Is(err, models.ErrNotFound) {
			t.Errorf("merge of %s: %v, want a %s error", c.what, err, c.want)
		}
		if now := state(); !maps.Equal(now, before) {
			t.Fatalf("the refused merge of %s changed %v to %v", c.what, before, now)
		}
	}

	if _, err := svc.Merge(ctx, p.manager, survivor.ID, from); err != nil {
		t.Fatal(err)
	}
	after := state()
	for coll, ids := range children {
		for _, id := range ids {
			if want := survivor.ID + " " + survivor.OwnerID; after[id] != want {
				t.Errorf("%s %s after the merge: customer and owner %q, want %q", coll, id, after[id], want)
			}
		}
	}
	for _, id := range from {
		if want := fmt.Sprintf("merged into %q, deleted true", survivor.ID); after[id] != want {
			t.Errorf("customer %s after the merge: %s, want %s", id, after[id], want)
		}
	}
	if want := `merged into "", deleted false`; after[survivor.ID] != want {
		t.Errorf("the survivor after the merge: %s", after[survivor.ID])
	}
	if _, err := svc.Merge(ctx, p.manager, survivor.ID, from); err != nil {
		t.Fatalf("the same merge again: %v", err)
	}
	if again := state(); !maps.Equal(again, after) {
		t.Fatalf("the same merge again changed %v to %v", after, again)
	}
}

// storeUsers stores the users that assignments look up: the people's reps,
// a rep of team-2 and an inactive rep of team-1.
func storeUsers(t *testing.T, st *store.Store, p people) {
	t.Helper()
	for _, u := range []models.User{
		{ID: p.rep.UserID, TeamID: "team-1", Active: true}, {ID: p.rep2.UserID, TeamID: "team-1", Active: true},
		{ID: "rep-3", TeamID: "team-2", Active: true}, {ID: "gone", TeamID: "team-1"},
	} {
		u.TenantID, u.Role, u.Email, u.Name = p.admin.TenantID, models.RoleRep, u.ID+"@rules.test", u.ID
		if err := st.CreateUser(context.Background(), u); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPoolRulesByRole: an admin assigns a customer to any active user, a
// manager to an active user of a team they manage and only a customer they
// see, a rep never; its open task and its records follow the new owner. A
// rep claims a customer of the pool (a second claim conflicts) and releases
// their own; nobody releases what they do not see, nor a customer already in
// the pool. Every refusal leaves the customer as it was.
func TestPoolRulesByRole(t *testing.T) {
	svc, p, st := newTenantWithStore(t)
	storeUsers(t, st, p)
	ctx := context.Background()
	c := mustCreate(t, svc, p.rep, company("Pooled"))
	task, err := svc.Tasks.Create(ctx, p.rep, models.Task{ChildFields: models.ChildFields{CustomerID: c.ID}, Title: "Call back", DueAt: time.Now().Add(72 * time.Hour)})
	must(t, err)
	contact, err := svc.Contacts.Create(ctx, p.rep, models.Contact{ChildFields: models.ChildFields{CustomerID: c.ID}, Name: "Li Na"})
	must(t, err)
	owner := func() string {
		t.Helper()
		got, err := svc.Customers.Get(ctx, p.admin, c.ID)
		must(t, err)
		return got.OwnerID + "/" + got.TeamID
	}
	type step struct {
		what string
		do   func() (models.Customer, error)
		// want is the error (nil: success) and owner the customer's
		// owner/team afterwards.
		want  error
		owner string
	}
	assign := func(a models.Actor, to string) func() (models.Customer, error) {
		return func() (models.Customer, error) { return svc.Assign(ctx, a, c.ID, to) }
	}
	var forbidden *models.ForbiddenError
	var invalid *models.ValidationError
	for _, s := range []step{
		{"a rep assigns", assign(p.rep, p.rep2.UserID), forbidden, "rep-1/team-1"},
		{"a manager assigns to another team's rep", assign(p.manager, "rep-3"), invalid, "rep-1/team-1"},
		{"a manager assigns to an inactive rep", assign(p.manager, "gone"), invalid, "rep-1/team-1"},
		{"a manager assigns to nobody", assign(p.manager, "nobody"), invalid, "rep-1/team-1"},
		{"another team's manager assigns to their rep", assign(p.otherManager, "rep-3"), models.ErrNotFound, "rep-1/team-1"},
		{"a manager assigns within the team", assign(p.manager, p.rep2.UserID), nil, "rep-2/team-1"},
		{"an admin assigns to another team", assign(p.admin, "rep-3"), nil, "rep-3/team-2"},
		{"the manager of the former team releases it", func() (models.Customer, error) { return svc.Release(ctx, p.manager, c.ID) }, models.ErrNotFound, "rep-3/team-2"},
		{"a rep releases another's", func() (models.Customer, error) { return svc.Release(ctx, p.rep, c.ID) }, models.ErrNotFound, "rep-3/team-2"},
		{"its rep releases it", func() (models.Customer, error) {
			return svc.Release(ctx, models.Actor{UserID: "rep-3", TenantID: p.admin.TenantID, Role: models.RoleRep, TeamID: "team-2"}, c.ID)
		}, nil, "/"},
		{"a rep releases it again", func() (models.Customer, error) { return svc.Release(ctx, p.rep, c.ID) }, models.ErrConflict, "/"},
		{"a rep claims it", func() (models.Customer, error) { return svc.Claim(ctx, p.rep2, c.ID) }, nil, "rep-2/team-1"},
		{"another rep claims it", func() (models.Customer, error) { return svc.Claim(ctx, p.rep, c.ID) }, models.ErrConflict, "rep-2/team-1"},
	} {
		_, err := s.do()
		switch want := s.want.(type) {
		case nil:
			if err != nil {
				t.Fatalf("%s: %v", s.what, err)
			}
		case *models.ForbiddenError:
			if !errors.As(err, &forbidden) {
				t.Fatalf("%s: %v, want a forbidden error", s.what, err)
			}
		case *models.ValidationError:
			if !errors.As(err, &invalid) {
				t.Fatalf("%s: %v, want a validation error", s.what, err)
			}
		default:
			if !errors.Is(err, want) {
				t.Fatalf("%s: %v, want %v", s.what, err, want)
			}
		}
		if got := owner(); got != s.owner {
			t.Fatalf("%s: the customer's owner/team is %s, want %s", s.what, got, s.owner)
		}
	}
	gotTask, err := svc.Tasks.Get(ctx, p.admin, task.ID)
	must(t, err)
	gotContact, err := svc.Contacts.Get(ctx, p.admin, contact.ID)
	must(t, err)
	if gotTask.AssigneeID != p.rep2.UserID || gotTask.OwnerID != p.rep2.UserID || gotContact.OwnerID != p.rep2.UserID || gotContact.TeamID != "team-1" {
		t.Fatalf("the records did not follow the customer to rep-2: task assignee %s owner %s, contact owner %s team %s",
			gotTask.AssigneeID, gotTask.OwnerID, gotContact.OwnerID, gotContact.TeamID)
	}
}

// TestReclaimIdleReturnsCustomersIdleForTheTenantsDays: with
// pool_reclaim_days 30, a customer whose owner logged no interaction for 30
// days since it was assigned goes back to the pool, with the reason in its
// history; one with a later interaction and one assigned since stay; at 29
// days none goes, nor with the rule off.
func TestReclaimIdleReturnsCustomersIdleForTheTenantsDays(t *testing.T) {
	clk := testenv.NewClock(time.Now().UTC())
	svc, p, st := newTenantWithStore(t, app.WithClock(clk.Now))
	storeUsers(t, st, p)
	ctx := context.Background()
	idle := mustCreate(t, svc, p.rep, person("Idle", ""))
	visited := mustCreate(t, svc, p.rep, person("Visited", ""))
	reassigned := mustCreate(t, svc, p.rep, person("Reassigned", ""))
	reclaim := func(want int) {
		t.Helper()
		if n, err := svc.ReclaimIdle(ctx, p.admin.TenantID); err != nil || n != want {
			t.Fatalf("at day %.0f: reclaimed %d (%v), want %d", clk.Now().Sub(idle.CreatedAt).Hours()/24, n, err, want)
		}
	}
	reclaimAfter := func(days int) {
		t.Helper()
		if _, err := svc.PatchSettings(ctx, p.admin, func(dst any) error { dst.(*models.Settings).PoolReclaimDays = days; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	reclaimAfter(30)
	clk.Advance(29 * 24 * time.Hour)
	reclaim(0)
	if _, err := svc.Interactions.Create(ctx, p.rep, models.Interaction{ChildFields: models.ChildFields{CustomerID: visited.ID}, Channel: "phone", OccurredAt: clk.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Assign(ctx, p.manager, reassigned.ID, p.rep2.UserID); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * 24 * time.Hour)
	reclaimAfter(0)
	reclaim(0) // the rule is off
	reclaimAfter(30)
	reclaim(1)
	for _, c := range []struct {
		id, owner string
	}{{idle.ID, ""}, {visited.ID, p.rep.UserID}, {reassigned.ID, p.rep2.UserID}} {
		got, err := svc.Customers.Get(ctx, p.admin, c.id)
		must(t, err)
		if got.OwnerID != c.owner {
			t.Errorf("%s: owner %q, want %q", got.Name, got.OwnerID, c.owner)
		}
		if c.owner == "" {
			last := got.OwnerHistory[len(got.OwnerHistory)-1]
			if last.From != p.rep.UserID || last.Reason != "no interaction for 30 days" {
				t.Errorf("%s went to the pool with the history entry %+v", got.Name, last)
			}
		}
	}
	reclaim(0) // nothing more is idle
}

func company(name string) models.Customer {
	return models.Customer{CustomerFields: models.CustomerFields{Name: name, Kind: models.KindCompany}}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
