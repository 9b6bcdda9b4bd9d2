package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fieldcrm/fieldcrm/internal/app"
	"github.com/fieldcrm/fieldcrm/internal/store"
	"github.com/fieldcrm/fieldcrm/internal/store/embedded"
	"github.com/fieldcrm/fieldcrm/internal/testenv"
)

// commandEnv is the environment startServe gives serve, for a one-shot
// command on the same database.
func commandEnv(vars map[string]string) func(string) string {
	env := map[string]string{"FERRETDB_POSTGRESQL_URL": os.Getenv("FERRETDB_POSTGRESQL_URL"), "REDIS_URL": os.Getenv("REDIS_URL")}
	for k, v := range vars {
		env[k] = v
	}
	return func(k string) string { return env[k] }
}

// sharedTestDatabase says the tests run on a database other processes can
// reach (FERRETDB_POSTGRESQL_URL; isolatedVars gives each test its own).
func sharedTestDatabase() bool { return os.Getenv("FERRETDB_POSTGRESQL_URL") != "" }

// `fieldcrm migrate` applies the steps, then finds nothing to do; a serve
// with FIELDCRM_MIGRATE=skip starts on the migrated database without
// migrating, and the command migrates whatever FIELDCRM_MIGRATE says.
func TestMigrateCommandMigratesAndServeSkipsIt(t *testing.T) {
	vars := isolatedVars(t, "migrate")
	vars["FIELDCRM_MIGRATE"] = app.MigrateSkip
	var out bytes.Buffer
	if err := run(context.Background(), []string{"migrate"}, commandEnv(vars), &out, io.Discard); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	if !strings.Contains(out.String(), "applied [1 2 3") {
		t.Fatalf("migrate said %q", out.String())
	}
	out.Reset()
	if err := run(context.Background(), []string{"migrate"}, commandEnv(vars), &out, io.Discard); err != nil || !strings.Contains(out.String(), "nothing to migrate") {
		t.Fatalf("migrate again: %v %q", err, out.String())
	}
	p := startServe(t, vars)
	p.stop(t)
	logs := p.logs.String()
	if !strings.Contains(logs, "database schema checked") || strings.Contains(logs, "migration applied") {
		t.Fatalf("serve with FIELDCRM_MIGRATE=skip did not just check the schema:\n%s", logs)
	}
}

// With FIELDCRM_MIGRATE=skip on a database that lacks migrations, serve says
// that `fieldcrm migrate` must run. On the embedded SQLite engine, which no
// other process can migrate while serve holds it, it fails at once; on a
// shared database it waits, and starts once the command has run.
func TestServeWithMigrateSkipNeedsTheMigrateCommand(t *testing.T) {
	vars := isolatedVars(t, "skip")
	vars["FIELDCRM_MIGRATE"] = app.MigrateSkip
	if !sharedTestDatabase() {
		err := run(context.Background(), []string{"serve"}, commandEnv(vars), io.Discard, io.Discard)
		var behind *app.SchemaBehindError
		if !errors.As(err, &behind) || !strings.Contains(err.Error(), "run `fieldcrm migrate` first") || behind.Schema.Database != 0 {
			t.Fatalf("serve on an empty database with FIELDCRM_MIGRATE=skip: %v", err)
		}
		return
	}
	logs := &syncWriter{w: &bytes.Buffer{}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve"}, commandEnv(vars), logs, logs) }()
	waitFor(t, "serve to say it waits for `fieldcrm migrate`", func() bool {
		return strings.Contains(logs.String(), "waiting for `fieldcrm migrate`")
	})
	if err := run(context.Background(), []string{"migrate"}, commandEnv(vars), io.Discard, io.Discard); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	waitFor(t, "serve to start after the migrations", func() bool { return strings.Contains(logs.String(), `"msg":"listening"`) })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v\n%s", err, logs.String())
	}
}

// A database migrated by a newer binary (a step this one does not know, not
// marked safe for older binaries) is refused by serve and by migrate, with
// a message naming both versions.
func TestServeRefusesADatabaseMigratedByANewerBinary(t *testing.T) {
	vars := isolatedVars(t, "newer")
	getenv := commandEnv(vars)
	cfg, err := commandConfig(getenv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	newer := cfg.storage()
	const newerVersion = 1000
	newer.ExtraMigrations = []store.Migration{{Version: newerVersion, Name: "rename the customers' phone field",
		Up: func(context.Context, *store.Store) error { return nil }}}
	if err := runMigrations(context.Background(), newer, testenv.DiscardLogger(), io.Discard); err != nil {
		t.Fatalf("the newer binary's migrate: %v", err)
	}
	for _, command := range []string{"serve", "migrate"} {
		err := run(context.Background(), []string{command}, getenv, io.Discard, io.Discard)
		var refused *store.SchemaNewerError
		if !errors.As(err, &refused) || exitCode(err) != 1 {
			t.Fatalf("%s of the older binary: %v, want a refusal", command, err)
		}
		for _, want := range []string{"version " + strconv.Itoa(newerVersion), "this binary's " + strconv.Itoa(refused.Binary), "rename the customers' phone field"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: %q does not say %q", command, err, want)
			}
		}
		if refused.Binary >= newerVersion || refused.Binary < 17 {
			t.Errorf("%s: binary schema %d", command, refused.Binary)
		}
	}
}

// Two `fieldcrm migrate` runs at once, with a step that takes longer than
// the migration lock's lease: the step runs once. On a shared database
// the second run waits its turn and then finds nothing to do; on the
// embedded SQLite engine, which one process owns, it stops at once and
// says the data dir is in use.
func TestTwoMigrateCommandsAtOnceRunASlowStepOnce(t *testing.T) {
	vars := isolatedVars(t, "twomigrates")
	cfg, err := commandConfig(commandEnv(vars), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var runs atomic.Int32
	started, finish := make(chan struct{}, 2), make(chan struct{})
	storage := cfg.storage()
	storage.MigrationLease = time.Second
	storage.ExtraMigrations = []store.Migration{{Version: 1000, Name: "a slow step", Up: func(ctx context.Context, _ *store.Store) error {
		runs.Add(1)
		started <- struct{}{}
		select {
		case <-finish:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}}}
	var outs [2]bytes.Buffer
	var errs [2]error
	var wg sync.WaitGroup
	migrate := func(i int) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = runMigrations(context.Background(), storage, testenv.DiscardLogger(), &outs[i])
		}()
	}
	migrate(0)
	select {
	case <-started:
	case <-time.After(60 * time.Second):
		t.Fatal("the slow step never started")
	}
	migrate(1)
	// More than a lease passes while the first run holds the lock.
	time.Sleep(storage.MigrationLease + storage.MigrationLease/2)
	close(finish)
	wg.Wait()
	if errs[0] != nil {
		t.Fatalf("first migrate: %v", errs[0])
	}
	if n := runs.Load(); n != 1 {
		t.Fatalf("the slow step ran %d times", n)
	}
	switch {
	case sharedTestDatabase():
		if errs[1] != nil || !strings.Contains(outs[1].String(), "nothing to migrate") {
			t.Fatalf("second migrate: %v %q", errs[1], outs[1].String())
		}
	default:
		if !errors.Is(errs[1], embedded.ErrDirInUse) {
			t.Fatalf("second migrate on the embedded SQLite engine: %v, want the data dir in use", errs[1])
		}
	}
}
