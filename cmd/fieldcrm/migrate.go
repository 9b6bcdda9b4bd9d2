package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/fieldcrm/fieldcrm/internal/app"
)

// migrateCommand runs the pending database migrations and exits: the
// Kubernetes Job or compose one-shot that runs before a rollout whose
// replicas start with FIELDCRM_MIGRATE=skip. It runs them whatever
// FIELDCRM_MIGRATE says (the Job may share the replicas' configuration).
func migrateCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: fieldcrm migrate\n\nRuns the pending database migrations, configured as serve is (MONGODB_URI,\nFERRETDB_POSTGRESQL_URL or the data dir), and exits 0 once the schema is the\nnewest this binary knows. Runners take turns under a lock: a second one waits.\nIt refuses a database migrated by a newer fieldcrm.")
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("migrate takes no arguments, got %q", fs.Args())}
	}
	cfg, err := commandConfig(getenv, stderr)
	if err != nil {
		return err
	}
	return runMigrations(ctx, cfg.storage(), newLogger(cfg, stderr), stdout)
}

// runMigrations migrates the storage and says what it did on out.
func runMigrations(ctx context.Context, storage app.Storage, log *slog.Logger, out io.Writer) error {
	status, err := app.Migrate(ctx, storage, log)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if len(status.Applied) == 0 {
		fmt.Fprintf(out, "database schema is at version %d: nothing to migrate\n", status.Current)
		return nil
	}
	fmt.Fprintf(out, "database schema is at version %d: applied %v\n", status.Current, status.Applied)
	return nil
}
