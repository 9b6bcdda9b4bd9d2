package store_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/fieldcrm/fieldcrm/models"
)

// Reservations only rise, and a new sync epoch moves every tenant's floor
// and reservation to the restore's time in microseconds, past every number
// handed out before it; a later epoch (a second restore of the same backup)
// is higher again, and a clock behind the numbers is refused.
func TestReservationsRiseAndANewEpochPassesThem(t *testing.T) {
	ctx := context.Background()
	st := env.Store(t)
	if err := st.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"tenant-a", "tenant-b"} {
		if err := st.CreateTenant(ctx, models.Tenant{ID: id, Name: id, CreatedAt: time.Now().UTC()}); err != nil {
			t.Fatal(err)
		}
	}
	if r, err := st.SyncReserved(ctx, "tenant-a"); err != nil || r != 0 {
		t.Fatalf("reservation of a new tenant: %d, %v", r, err)
	}
	for _, step := range []struct{ ask, want int64 }{{1000, 1000}, {500, 1000}, {3000, 3000}} {
		if r, err := st.ReserveSync(ctx, "tenant-a", step.ask); err != nil || r != step.want {
			t.Fatalf("reserve up to %d: %d, %v; want %d", step.ask, r, err, step.want)
		}
	}
	restore := time.Date(2030, 3, 14, 9, 0, 0, 0, time.UTC)
	for _, at := range []time.Time{restore, restore.Add(time.Second)} {
		n, err := st.AdvanceSyncEpoch(ctx, at)
		if err != nil || n != 2 {
			t.Fatalf("advance at %s: %d tenants, %v", at, n, err)
		}
		for _, tenant := range []string{"tenant-a", "tenant-b"} {
			floor, err := st.SyncFloor(ctx, tenant)
			if err != nil || floor != at.UnixMicro() {
				t.Fatalf("%s after an epoch at %s: floor %d, %v; want %d", tenant, at, floor, err, at.UnixMicro())
			}
			if r, _ := st.SyncReserved(ctx, tenant); r != floor {
				t.Fatalf("%s: reservation %d, floor %d", tenant, r, floor)
			}
		}
	}
	if _, err := st.AdvanceSyncEpoch(ctx, restore); err == nil || !strings.Contains(err.Error(), "clock") {
		t.Fatalf("an epoch from a clock behind the numbers: %v", err)
	}
}

// The tenants the pool reclaim visits are those whose settings ask for it.
func TestTenantsWithPoolReclaimAreThoseThatSetIt(t *testing.T) {
	ctx := context.Background()
	st := env.Store(t)
	for _, tn := range []models.Tenant{
		{ID: "reclaims", Name: "r", Settings: models.Settings{PoolReclaimDays: 30}},
		{ID: "keeps", Name: "k"},
	} {
		if err := st.CreateTenant(ctx, tn); err != nil {
			t.Fatal(err)
		}
	}
	got, err := st.TenantsWithPoolReclaim(ctx)
	if err != nil || len(got) != 1 || got[0] != "reclaims" {
		t.Fatalf("tenants with pool reclaim: %v, %v", got, err)
	}
}

// Reminders inserted in bulk are each readable by id.
func TestInsertRemindersStoresEachOne(t *testing.T) {
	ctx := context.Background()
	st := env.Store(t)
	at := time.Now().UTC().Truncate(time.Millisecond)
	rs := []models.Reminder{
		{ID: "r1", TenantID: "t", Kind: "task_due", TaskID: "task1", UserID: "u", FireAt: at, State: "scheduled", UpdatedAt: at},
		{ID: "r2", TenantID: "t", Kind: "task_due", TaskID: "task2", UserID: "u", FireAt: at.Add(time.Minute), State: "scheduled", UpdatedAt: at},
	}
	if err := st.InsertReminders(ctx, rs); err != nil {
		t.Fatal(err)
	}
	for _, want := range rs {
		got, err := st.Reminder(ctx, want.ID)
		if err != nil || got.TaskID != want.TaskID || !got.FireAt.Equal(want.FireAt) {
			t.Fatalf("reminder %s: %+v, %v", want.ID, got, err)
		}
	}
}
