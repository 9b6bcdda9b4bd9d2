package watermelon_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/fieldcrm/fieldcrm/internal/app"
	"github.com/fieldcrm/fieldcrm/internal/app/apptest"
	"github.com/fieldcrm/fieldcrm/internal/testenv"
	"github.com/fieldcrm/fieldcrm/models"
	"github.com/fieldcrm/fieldcrm/sync/cursor"
	"github.com/fieldcrm/fieldcrm/sync/watermelon"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

// appWithTenant is an application on the test's engines with one tenant.
func appWithTenant(t *testing.T, name string) (*app.App, models.Tenant) {
	t.Helper()
	a := apptest.New(t, apptest.Config(), env.Store(t), env.Redis(t))
	tenant := models.Tenant{ID: models.NewID(), Name: name, CreatedAt: time.Now().UTC()}
	if err := a.Store.CreateTenant(context.Background(), tenant); err != nil {
		t.Fatal(err)
	}
	return a, tenant
}

// racingSequencer runs a write after it has computed a pull's watermark and
// before the pull queries the records: the moment a concurrent write lands
// above the watermark that the pull will not see.
type racingSequencer struct {
	*cursor.Sequencer
	between func()
}

func (s *racingSequencer) Watermark(ctx context.Context, tenant string) (int64, error) {
	w, err := s.Sequencer.Watermark(ctx, tenant)
	if s.between != nil {
		between := s.between
		s.between = nil
		between()
	}
	return w, err
}

// TestRecordChangedDuringAPullStillArrivesAsCreated: a record created after
// the device's cursor and changed again between the pull's watermark and its
// query is above the watermark, so the query of (cursor, watermark] skips it;
// the next pull would send it as updated to a device that never received it
// (WatermelonDB: "Server wants client to update record … but it doesn't exist
// locally"). The round that skipped it must bring it, as created.
func TestRecordChangedDuringAPullStillArrivesAsCreated(t *testing.T) {
	ctx := context.Background()
	a, tenant := appWithTenant(t, "Race")
	// The engine is built here, on the application's CRM and store, so that
	// its sequencer can run a write between the watermark and the query.
	seq := &racingSequencer{Sequencer: a.Sequencer}
	svc, engine := a.CRM, watermelon.New(a.CRM, seq, a.Store, 0)
	desk := models.Actor{UserID: "desk", TenantID: tenant.ID, Role: models.RoleAdmin}
	phone := models.Actor{UserID: "admin", TenantID: tenant.ID, Role: models.RoleAdmin, DeviceID: "phone"}

	create := func(name string) models.Customer {
		t.Helper()
		c, err := svc.CreateCustomer(ctx, desk, models.Customer{CustomerFields: models.CustomerFields{Name: name}}, false)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	retitle := func(id, title string) func() {
		return func() {
			if _, err := svc.Customers.Update(ctx, desk, id, 0, func(dst any) error {
				dst.(*models.Customer).Title = title
				return nil
			}); err != nil {
				t.Error(err)
			}
		}
	}
	ids := func(rows []map[string]any) []string {
		var out []string
		for _, r := range rows {
			out = append(out, r["id"].(string))
		}
		return out
	}

	first := create("Before the first sync")
	seq.between = retitle(first.ID, "changed during the first sync")
	got, err := engine.Pull(ctx, phone, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c := got.Changes["customers"]; !slices.Contains(ids(c.Created), first.ID) {
		t.Fatalf("a first sync racing an edit lacks the customer: created %v, updated %v", ids(c.Created), ids(c.Updated))
	}
	cursor1 := got.Timestamp

	second := create("After the first sync")
	seq.between = retitle(second.ID, "changed during the second sync")
	got, err = engine.Pull(ctx, phone, cursor1, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := got.Changes["customers"]
	if !slices.Contains(ids(c.Created), second.ID) || slices.Contains(ids(c.Updated), second.ID) {
		t.Fatalf("a pull racing an edit of a new customer: created %v, updated %v; want %s created", ids(c.Created), ids(c.Updated), second.ID)
	}
	if !slices.Contains(ids(c.Updated), first.ID) {
		t.Fatalf("the first customer's later edit: created %v, updated %v; want it updated", ids(c.Created), ids(c.Updated))
	}

	// The next round sends the second again, as updated: the device holds it.
	got, err = engine.Pull(ctx, phone, got.Timestamp, nil)
	if err != nil {
		t.Fatal(err)
	}
	c = got.Changes["customers"]
	if len(c.Created) != 0 || !slices.Contains(ids(c.Updated), second.ID) {
		t.Fatalf("the round after: created %v, updated %v; want %s updated", ids(c.Created), ids(c.Updated), second.ID)
	}
	for _, r := range c.Updated {
		if r["id"] == second.ID && r["title"] != "changed during the second sync" {
			t.Fatalf("the newer version: %v", r)
		}
	}
}

// TestAFirstSyncBringsTheDevicesOwnLateCreations: after a 410 reset a device
// pulls from null holding nothing, not even what it created itself. A record
// it created, changed again between the first sync's watermark and its
// query, must still come in that first sync, paged or whole.
func TestAFirstSyncBringsTheDevicesOwnLateCreations(t *testing.T) {
	ctx := context.Background()
	a, tenant := appWithTenant(t, "Reset")
	seq := &racingSequencer{Sequencer: a.Sequencer}
	engine := watermelon.New(a.CRM, seq, a.Store, 0)
	desk := models.Actor{UserID: "desk", TenantID: tenant.ID, Role: models.RoleAdmin}
	phone := models.Actor{UserID: "admin", TenantID: tenant.ID, Role: models.RoleAdmin, DeviceID: "phone"}
	first, err := engine.Pull(ctx, phone, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, whole := range []bool{false, true} {
		id := models.NewID()
		res, err := engine.Push(ctx, phone, first.Timestamp, watermelon.PushRequest{Changes: map[string]watermelon.PushTable{
			"customers": {Created: []map[string]any{{"id": id, "name": fmt.Sprint("Made on the phone ", i)}}}}})
		if err != nil || len(res.Rejected) > 0 {
			t.Fatalf("push: %v %v", err, res.Rejected)
		}
		seq.between = func() {
			if _, err := a.CRM.Customers.Update(ctx, desk, id, 0, func(dst any) error {
				dst.(*models.Customer).Title = "changed during the first sync"
				return nil
			}); err != nil {
				t.Error(err)
			}
		}
		var created []map[string]any
		if whole {
			started, err := engine.StartWholeFirstSync(ctx, phone)
			if err != nil {
				t.Fatal(err)
			}
			var body bytes.Buffer
			if _, err := started.Send(ctx, &body); err != nil {
				t.Fatal(err)
			}
			var got watermelon.PullResult
			if err := json.Unmarshal(body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			created = got.Changes["customers"].Created
		} else {
			got, err := engine.Pull(ctx, phone, 0, nil)
			if err != nil {
				t.Fatal(err)
			}
			created = got.Changes["customers"].Created
		}
		if !slices.ContainsFunc(created, func(r map[string]any) bool { return r["id"] == id }) {
			t.Fatalf("whole %v: a first sync lacks the device's own customer changed during it (%d created)", whole, len(created))
		}
	}
}
