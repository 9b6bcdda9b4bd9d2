// Command fieldcrm is the one binary of fieldcrm: `fieldcrm serve` runs the API
// (and, in later versions, the workers); other subcommands operate on the data.
// This file and config.go are the only code that reads the environment.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	// The container image is built FROM scratch, which has no zoneinfo; users'
	// time zones (digests, quiet hours) must load anyway.
	_ "time/tzdata"
)

// version is stamped at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "fieldcrm:", err)
		}
		os.Exit(exitCode(err))
	}
}

func exitCode(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	var u usageError
	if errors.As(err, &u) {
		return 2
	}
	return 1
}

// usageError is a mistake in the command line.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

const usage = `fieldcrm — self-hosted backend for field sales teams

Usage:
  fieldcrm <command> [flags]

Commands:
  serve     run the HTTP API on embedded or real MongoDB and Redis
  bench     measure: bench sync, reminders, import, or api (every online read, issue #20)
  import    read customers from a CSV or Excel file (import --help)
  export    write a tenant's customers to CSV or Excel (export --help)
  migrate   run the pending database migrations, then exit (a Job before a rollout)
  seed      create a demo tenant with a year of records (seed --demo --help)
  backup    copy the embedded SQLite engine, also while serve runs (backup --to DIR)
  restore   put a backup in the data dir, with no server on it (restore --from DIR)
  advance-sync-epoch
            after restoring MongoDB or PostgreSQL: make devices resync
  schema    write a WatermelonDB app's schema, migrations, models and types (schema --out DIR)
  probe     exit 0 when a running server answers /readyz (container health checks)
  version   print the version

Run "fieldcrm <command> --help" for a command's flags. Configuration comes from
environment variables (see the README); flags override them.
`

// parseFlags parses a command's flags: -h asks for help (flag.ErrHelp), any
// other mistake is a usage error.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	return nil
}

// run is main without the process: tests call it with their own environment
// and a context they cancel instead of a signal.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageError{"no command given"}
	}
	switch args[0] {
	case "serve":
		return serveCommand(ctx, args[1:], getenv, stdout, stderr)
	case "bench":
		return benchCommand(ctx, args[1:], getenv, stdout, stderr)
	case "import":
		return importCommand(ctx, args[1:], getenv, stdout, stderr)
	case "export":
		return exportCommand(ctx, args[1:], getenv, stdout, stderr)
	case "migrate":
		return migrateCommand(ctx, args[1:], getenv, stdout, stderr)
	case "seed":
		return seedCommand(ctx, args[1:], getenv, stdout, stderr)
	case "backup":
		return backupCommand(ctx, args[1:], getenv, stdout, stderr)
	case "restore":
		return restoreCommand(ctx, args[1:], getenv, stdout, stderr)
	case "advance-sync-epoch":
		return advanceSyncEpochCommand(ctx, args[1:], getenv, stdout, stderr)
	case "schema":
		return schemaCommand(ctx, args[1:], getenv, stdout, stderr)
	case "probe":
		return probeCommand(ctx, args[1:], getenv, stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "fieldcrm", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return usageError{fmt.Sprintf("unknown command %q", args[0])}
	}
}
