// Package embedded runs FerretDB inside the fieldcrm process, so the server and the
// tests speak the MongoDB wire protocol through the official driver with no MongoDB
// server installed. SQLite (files under a directory) is the zero-set-up default;
// PostgreSQL is the bigger embedded tier.
package embedded

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// Config chooses FerretDB's backend: PostgreSQLURL when set, otherwise SQLite
// files under SQLiteDir.
type Config struct {
	SQLiteDir string
	// SQLiteSynchronous is SQLite's synchronous setting for every connection:
	// "full" (the default) syncs each commit to disk; "normal" syncs only at
	// WAL checkpoints, which survives a crash of the process but may lose the
	// last commits on power loss. Each synced commit costs about 0.3 ms here,
	// and a sync write commits twice (version claim, record).
	SQLiteSynchronous string
	PostgreSQLURL     string
	// Listen is the TCP address FerretDB listens on; empty: a free port on
	// 127.0.0.1.
	Listen string
	Logger *slog.Logger
}

// Ferret is a running in-process FerretDB listening on a loopback port.
type Ferret struct {
	uri       string
	sqliteDir string
	pgURL     string
	// sqlitePragmas are the URL parameters of every SQLite connection.
	sqlitePragmas string
	cancel        context.CancelFunc
	done          chan struct{}
}

// StartFerret starts FerretDB on 127.0.0.1 with a free port and returns once it
// accepts connections. Close stops it.
func StartFerret(ctx context.Context, cfg Config) (*Ferret, error) {
	fc := &ferretdb.Config{
		Listener: ferretdb.ListenerConfig{TCP: cmp.Or(cfg.Listen, "127.0.0.1:0")},
		Logger:   quietLogger(cfg.Logger),
	}
	var sqliteDir, pragmas string
	if cfg.PostgreSQLURL != "" {
		fc.Handler = "postgresql"
		fc.PostgreSQLURL = cfg.PostgreSQLURL
	} else {
		abs, err := filepath.Abs(cfg.SQLiteDir)
		if err != nil {
			return nil, fmt.Errorf("resolve sqlite dir %q: %w", cfg.SQLiteDir, err)
		}
		if err := os.MkdirAll(abs, 0o700); err != nil {
			return nil, fmt.Errorf("create sqlite dir %q: %w", abs, err)
		}
		sqliteDir = abs
		fc.Handler = "sqlite"
		synchronous := cmp.Or(cfg.SQLiteSynchronous, "full")
		if synchronous != "full" && synchronous != "normal" {
			return nil, fmt.Errorf("SQLite synchronous %q: want full or normal", synchronous)
		}
		pragmas = "_pragma=synchronous(" + synchronous + ")"
		// FerretDB wants a directory URI ending in a slash.
		fc.SQLiteURL = "file:" + abs + "/?" + pragmas
	}
	f, err := ferretdb.New(fc)
	if err != nil {
		return nil, fmt.Errorf("start embedded FerretDB (%s): %w", fc.Handler, err)
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = f.Run(runCtx) // returns only when runCtx is cancelled
	}()
	return &Ferret{uri: f.MongoDBURI(), sqliteDir: sqliteDir, pgURL: cfg.PostgreSQLURL, sqlitePragmas: pragmas, cancel: cancel, done: done}, nil
}

// URI is the mongodb:// address of the embedded server.
func (f *Ferret) URI() string { return f.uri }

// SQLiteDir is the directory of the SQLite files, or "" on PostgreSQL.
func (f *Ferret) SQLiteDir() string { return f.sqliteDir }

// Tables opens a direct reader of database db's tables (see Tables).
func (f *Ferret) Tables(db string) (*Tables, error) {
	return OpenTables(f.sqliteDir, f.sqlitePragmas, f.pgURL, db)
}

// Close stops the listener and the backend and waits for them, at most until ctx ends.
func (f *Ferret) Close(ctx context.Context) error {
	f.cancel()
	select {
	case <-f.done:
		return nil
	case <-ctx.Done():
		return errors.New("embedded FerretDB did not stop in time")
	}
}

// quietLogger passes FerretDB's own errors through and drops the rest: it logs
// every error response it sends (a duplicate key, an existing collection) with a
// dump of the wire message at warning level, which would drown fieldcrm's logs.
func quietLogger(base *slog.Logger) *slog.Logger {
	if base == nil {
		base = slog.Default()
	}
	return slog.New(levelFloor{Handler: base.Handler(), min: slog.LevelError}).With("component", "ferretdb")
}

type levelFloor struct {
	slog.Handler
	min slog.Level
}

func (l levelFloor) Enabled(ctx context.Context, level slog.Level) bool {
	return level >= l.min && l.Handler.Enabled(ctx, level)
}

func (l levelFloor) WithAttrs(attrs []slog.Attr) slog.Handler {
	return levelFloor{Handler: l.Handler.WithAttrs(attrs), min: l.min}
}

func (l levelFloor) WithGroup(name string) slog.Handler {
	return levelFloor{Handler: l.Handler.WithGroup(name), min: l.min}
}
