package store_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fieldcrm/fieldcrm/internal/store"
	"github.com/fieldcrm/fieldcrm/models"
)

// openMigrated opens a store on cfg's database and migrates it; the database
// is dropped when t ends.
func openMigrated(t *testing.T, cfg store.Config) *store.Store {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.DropDatabase(ctx); _ = st.Close(ctx) })
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return st
}

// open opens another store (another runner) on cfg's database.
func open(t *testing.T, cfg store.Config) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close(context.Background()) })
	return st
}

func binarySchema(t *testing.T, st *store.Store) int {
	t.Helper()
	sc, err := st.Schema(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return sc.Binary
}

// Two runners migrate one database while a step takes several times the
// lock's lease: the holder renews the lock, so the second runner waits
// instead of taking it over, the step runs once, and the second runner
// finds nothing left to do. The lease is short (a second) and the step ends
// when the test says so, once the lock has outlived its first lease by a
// whole lease.
func TestSlowMigrationRunsOnceWhileItsLockIsRenewed(t *testing.T) {
	ctx := context.Background()
	cfg := env.StoreConfig(t)
	base := openMigrated(t, cfg)
	next := binarySchema(t, base) + 1

	const lease = time.Second
	var runs atomic.Int32
	started := make(chan struct{}, 2)
	finish := make(chan struct{})
	cfg.MigrationLease = lease
	cfg.ExtraMigrations = []store.Migration{{Version: next, Name: "a slow step", Up: func(ctx context.Context, _ *store.Store) error {
		runs.Add(1)
		started <- struct{}{}
		select {
		case <-finish:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}}}
	first, second := open(t, cfg), open(t, cfg)
	type result struct {
		status store.MigrationStatus
		err    error
	}
	firstDone, secondDone := make(chan result, 1), make(chan result, 1)
	go func() { s, err := first.Migrate(ctx); firstDone <- result{s, err} }()
	select {
	case <-started:
	case <-time.After(30 * time.Second):
		t.Fatal("the slow step never started")
	}
	owner, firstExpiry, err := first.MigrationLockForTest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	go func() { s, err := second.Migrate(ctx); secondDone <- result{s, err} }()

	// Wait until the first lease is a whole lease past: without renewal the
	// second runner would have broken the lock and started the step.
	renewed := false
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(lease / 6) {
		o, exp, err := first.MigrationLockForTest(ctx)
		if err != nil {
			t.Fatalf("the lock went away while its holder ran: %v", err)
		}
		if o != owner {
			t.Fatalf("the lock passed from %s to %s while its holder ran", owner, o)
		}
		if exp.After(firstExpiry) && time.Now().After(firstExpiry.Add(lease)) {
			renewed = true
			break
		}
	}
	if !renewed {
		t.Fatal("the lock was not renewed past its first lease")
	}
	select {
	case r := <-secondDone:
		t.Fatalf("the second runner finished while the first held the lock: %+v %v", r.status, r.err)
	default:
	}
	close(finish)
	a, b := <-firstDone, <-secondDone
	if a.err != nil || b.err != nil {
		t.Fatalf("runners: %v; %v", a.err, b.err)
	}
	if n := runs.Load(); n != 1 {
		t.Fatalf("the slow step ran %d times, want once", n)
	}
	if len(a.status.Applied) != 1 || a.status.Applied[0] != next || len(b.status.Applied) != 0 || b.status.Current != next {
		t.Fatalf("first applied %v, second applied %v (current %d); want [%d] and none", a.status.Applied, b.status.Applied, b.status.Current, next)
	}
	if _, _, err := first.MigrationLockForTest(ctx); !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("the lock is still there after both runners: %v", err)
	}
}

// A runner whose lock was taken from it (it could not renew in time, and
// another runner broke it) stops its step and fails, recording nothing.
func TestMigrationStopsWhenItLosesItsLock(t *testing.T) {
	ctx := context.Background()
	cfg := env.StoreConfig(t)
	base := openMigrated(t, cfg)
	next := binarySchema(t, base) + 1
	started := make(chan struct{}, 1)
	cfg.MigrationLease = time.Second
	cfg.ExtraMigrations = []store.Migration{{Version: next, Name: "a step that waits", Up: func(ctx context.Context, _ *store.Store) error {
		started <- struct{}{}
		<-ctx.Done() // only the lost lock ends it
		return ctx.Err()
	}}}
	runner := open(t, cfg)
	done := make(chan error, 1)
	go func() { _, err := runner.Migrate(ctx); done <- err }()
	<-started
	if err := runner.BreakMigrationLockForTest(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "lost the migration lock") {
			t.Fatalf("Migrate returned %v, want the lost lock", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the runner went on without its lock")
	}
	sc, err := runner.Schema(ctx)
	if err != nil || len(sc.Pending) != 1 || sc.Pending[0] != next {
		t.Fatalf("schema after the lost lock: %+v %v; want step %d pending", sc, err, next)
	}
}

// A binary refuses a database migrated by a newer one, naming both
// versions, unless every step it does not know says it keeps older binaries
// working.
func TestBinaryRefusesANewerSchemaUnlessTheNewStepsKeepItWorking(t *testing.T) {
	ctx := context.Background()
	cfg := env.StoreConfig(t)
	older := openMigrated(t, cfg)
	known := binarySchema(t, older)

	newerCfg := cfg
	newerCfg.ExtraMigrations = []store.Migration{
		{Version: known + 1, Name: "add an index", KeepsOlderBinaries: true, Up: func(context.Context, *store.Store) error { return nil }},
	}
	if _, err := open(t, newerCfg).Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	sc, err := older.Schema(ctx)
	if err != nil || sc.Database != known+1 || sc.Binary != known || len(sc.Pending) != 0 {
		t.Fatalf("older binary after an additive step: %+v %v", sc, err)
	}
	if _, err := older.Migrate(ctx); err != nil {
		t.Fatalf("older binary's migrate after an additive step: %v", err)
	}

	newerCfg.ExtraMigrations = append(newerCfg.ExtraMigrations,
		store.Migration{Version: known + 2, Name: "rename a field", Up: func(context.Context, *store.Store) error { return nil }})
	if _, err := open(t, newerCfg).Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	for name, check := range map[string]func() error{
		"Schema":  func() error { _, err := older.Schema(ctx); return err },
		"Migrate": func() error { _, err := older.Migrate(ctx); return err },
	} {
		err := check()
		var newer *store.SchemaNewerError
		if !errors.As(err, &newer) || newer.Database != known+2 || newer.Binary != known || newer.Step != known+2 {
			t.Fatalf("%s of the older binary: %v, want a SchemaNewerError", name, err)
		}
		for _, want := range []string{"version " + strconv.Itoa(known+2), "binary's " + strconv.Itoa(known), "rename a field"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: %q does not say %q", name, err, want)
			}
		}
	}
}
