package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/fieldcrm/fieldcrm/internal/store"
	"github.com/fieldcrm/fieldcrm/internal/store/embedded"
)

// Storage says where the database is: MongoURI, else the in-process FerretDB
// on PostgreSQLURL, else the in-process FerretDB on SQLite under DataDir.
type Storage struct {
	MongoURI string
	Database string
	// DataDir holds the embedded SQLite engine's files (see SQLiteDir).
	DataDir       string
	PostgreSQLURL string
	// SQLiteSynchronous is "full" (every commit synced to disk) or "normal".
	SQLiteSynchronous string
	// DataDirLocked says the caller holds DataDir's lock already (restore
	// does, across its copy and the opening of the store).
	DataDirLocked bool
	// Migrate is MigrateAuto (also the zero value) or MigrateSkip.
	Migrate string
	// SchemaPoll is how often an open in MigrateSkip mode looks again at a
	// shared database that lacks migrations (0: DefaultSchemaPoll).
	SchemaPoll time.Duration
	// MigrationLease and ExtraMigrations are store.Config's, for tests.
	MigrationLease  time.Duration
	ExtraMigrations []store.Migration
}

// Migration modes (Storage.Migrate, FIELDCRM_MIGRATE).
const (
	// MigrateAuto runs the pending migrations when the storage opens,
	// replicas taking turns under the migration lock.
	MigrateAuto = "auto"
	// MigrateSkip runs none: `fieldcrm migrate` (a Kubernetes Job, a compose
	// one-shot) does, before the rollout. The open checks the schema instead:
	// on a shared database that lacks migrations it waits for them (see
	// OpenStorage); on the embedded SQLite engine, which no other process can
	// migrate while this one holds it, it fails.
	MigrateSkip = "skip"
)

// DefaultSchemaPoll is how often a MigrateSkip open looks again for the
// migrations it waits for.
const DefaultSchemaPoll = 5 * time.Second

// SchemaBehindError says the database lacks migrations this binary needs,
// and this open was told not to run them (MigrateSkip).
type SchemaBehindError struct {
	Schema store.Schema
}

func (e *SchemaBehindError) Error() string {
	return fmt.Sprintf("the database schema is version %d and this binary needs %d (steps %v not applied): run `fieldcrm migrate` first (FIELDCRM_MIGRATE=skip leaves the migrations to it)",
		e.Schema.Database, e.Schema.Binary, e.Schema.Pending)
}

// Shared names the setting that puts the database outside this process
// (several replicas may share it), or "" for the embedded SQLite engine,
// which serves one process.
func (s Storage) Shared() string {
	switch {
	case s.MongoURI != "":
		return "MONGODB_URI"
	case s.PostgreSQLURL != "":
		return "FERRETDB_POSTGRESQL_URL"
	}
	return ""
}

// SQLiteDir is where the embedded FerretDB keeps its SQLite files in a data dir.
func SQLiteDir(dataDir string) string { return filepath.Join(dataDir, "ferretdb") }

// OpenStorage opens the database as New does, for commands that need the
// store alone. With cfg.Migrate MigrateAuto it runs the pending migrations;
// with MigrateSkip it checks the schema: a database newer than this binary
// is refused either way (store.SchemaNewerError). A shared database that
// lacks migrations is waited for, looked at again every SchemaPoll, until
// `fieldcrm migrate` has run or ctx ends: a Deployment applied together with
// its migration Job then starts as soon as the Job is done, instead of
// crash-looping into ever longer back-offs (the start-up probe still bounds
// the wait). The embedded SQLite engine belongs to this process alone, so
// nobody else can migrate it: there the open fails at once. closeStore
// releases everything, also after an error.
func OpenStorage(ctx context.Context, cfg Storage, log *slog.Logger) (st *store.Store, closeStore func(context.Context), err error) {
	st, closeStore, _, err = openStorage(ctx, cfg, log, nil)
	return st, closeStore, err
}

// Migrate opens the storage, runs the pending migrations (whatever
// cfg.Migrate says), closes it and says what it did: `fieldcrm migrate`.
func Migrate(ctx context.Context, cfg Storage, log *slog.Logger) (store.MigrationStatus, error) {
	cfg.Migrate = MigrateAuto
	_, closeStore, status, err := openStorage(ctx, cfg, log, nil)
	closeStore(ctx)
	return status, err
}

// openStorage is OpenStorage, saying what it migrated, with the store's
// calls told to calls (nil: to no one).
func openStorage(ctx context.Context, cfg Storage, log *slog.Logger, calls store.CallObserver) (*store.Store, func(context.Context), store.MigrationStatus, error) {
	poll := cmp.Or(cfg.SchemaPoll, DefaultSchemaPoll)
	for {
		st, closeStore, status, err := openStorageOnce(ctx, cfg, log, calls)
		var behind *SchemaBehindError
		if !errors.As(err, &behind) || cfg.Shared() == "" {
			return st, closeStore, status, err
		}
		// Closed and opened again rather than looked at through this
		// connection: an embedded FerretDB reads its catalogue once, and
		// would not see the collections the migrations create.
		closeStore(ctx)
		log.Warn("waiting for `fieldcrm migrate`: "+err.Error(), "database_schema", behind.Schema.Database,
			"binary_schema", behind.Schema.Binary, "looking_again_in", poll.String())
		select {
		case <-ctx.Done():
			return nil, func(context.Context) {}, status, fmt.Errorf("%w (stopped waiting: %w)", err, ctx.Err())
		case <-time.After(poll):
		}
	}
}

// openStorageOnce opens the storage and migrates or checks it (see
// OpenStorage), once.
func openStorageOnce(ctx context.Context, cfg Storage, log *slog.Logger, calls store.CallObserver) (st *store.Store, closeStore func(context.Context), status store.MigrationStatus, err error) {
	var closers []func(context.Context)
	closeStore = func(ctx context.Context) {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i](ctx)
		}
	}
	if cfg.MongoURI == "" && cfg.PostgreSQLURL != "" {
		// Replicas starting together on one PostgreSQL database take turns:
		// FerretDB's catalogue and the migrations are not safe to race.
		release, err := embedded.LockStartup(ctx, cfg.PostgreSQLURL)
		if err != nil {
			return nil, closeStore, status, err
		}
		defer release()
	}
	storeCfg, closeEngine, err := openEngine(ctx, cfg, log)
	if err != nil {
		return nil, closeStore, status, err
	}
	closers = append(closers, closeEngine)
	storeCfg.MigrationLease, storeCfg.ExtraMigrations = cfg.MigrationLease, cfg.ExtraMigrations
	storeCfg.Calls = calls
	opened, err := store.Open(ctx, storeCfg)
	if err != nil {
		return nil, closeStore, status, fmt.Errorf("open the store: %w", err)
	}
	closers = append(closers, func(ctx context.Context) { _ = opened.Close(ctx) })
	st = opened
	switch cfg.Migrate {
	case MigrateSkip:
		schema, err := st.Schema(ctx)
		if err != nil {
			return nil, closeStore, status, err
		}
		status.Current = schema.Database
		if len(schema.Pending) > 0 {
			return nil, closeStore, status, &SchemaBehindError{Schema: schema}
		}
		if err := st.EnsureEngineIndexes(ctx); err != nil {
			return nil, closeStore, status, err
		}
		log.Info("database schema checked (FIELDCRM_MIGRATE=skip: `fieldcrm migrate` runs the migrations)", "version", schema.Database, "binary", schema.Binary)
	default:
		status, err = st.Migrate(ctx)
		if err != nil {
			return nil, closeStore, status, err
		}
		log.Info("database schema ready", "version", status.Current, "binary", status.Binary, "applied_now", status.Applied)
	}
	return st, closeStore, status, nil
}

// openEngine decides where MongoDB is: MongoURI, or an embedded FerretDB on
// PostgreSQL or SQLite, which it starts. It returns the store configuration
// and a closer.
func openEngine(ctx context.Context, cfg Storage, log *slog.Logger) (store.Config, func(context.Context), error) {
	sc := store.Config{URI: cfg.MongoURI, Database: cfg.Database, Logger: log}
	if cfg.MongoURI != "" {
		log.Info("storage: MongoDB", "database", cfg.Database)
		return sc, func(context.Context) {}, nil
	}
	release := func() {}
	if cfg.PostgreSQLURL == "" && !cfg.DataDirLocked {
		// One process at a time on the SQLite files: two embedded FerretDBs
		// would each trust their own catalogue, and restore must know that no
		// server runs here. The lock ends with the process, however it ends.
		lock, err := embedded.LockDir(cfg.DataDir)
		if err != nil {
			return sc, nil, fmt.Errorf("embedded SQLite engine: %w", err)
		}
		release = lock.Release
	}
	ec := embedded.Config{SQLiteDir: SQLiteDir(cfg.DataDir), SQLiteSynchronous: cfg.SQLiteSynchronous,
		PostgreSQLURL: cfg.PostgreSQLURL, Logger: log}
	f, err := embedded.StartFerret(ctx, ec)
	if err != nil {
		release()
		return sc, nil, err
	}
	sc.URI = f.URI()
	sc.SQLiteDir = f.SQLiteDir()
	tables, err := f.Tables(cfg.Database)
	if err != nil {
		_ = f.Close(ctx)
		release()
		return sc, nil, err
	}
	sc.Tables = tables
	if tables.ByID() {
		sc.ByID = tables
	}
	if cfg.PostgreSQLURL != "" {
		log.Warn("storage: EMBEDDED FerretDB on PostgreSQL (set MONGODB_URI for MongoDB)", "database", cfg.Database)
	} else {
		log.Warn("storage: EMBEDDED FerretDB on SQLite; fine for one small team, set MONGODB_URI for production", "dir", ec.SQLiteDir)
	}
	return sc, func(ctx context.Context) { _ = tables.Close(); _ = f.Close(ctx); release() }, nil
}

// openStorage opens the configured storage, or takes the one given by
// WithStore, which stays the caller's to close. ownSQLite says it opened the
// embedded SQLite engine, which holds its data dir's lock: no other process
// can use that database.
func (a *App) openStorage(ctx context.Context) (ownSQLite bool, err error) {
	if a.opts.store != nil {
		a.Store = a.opts.store
		return false, nil
	}
	st, closeStore, _, err := openStorage(ctx, a.cfg.Storage, a.log, a.Telemetry.Database)
	a.closers = append(a.closers, closeStore)
	if err != nil {
		return false, err
	}
	a.Store = st
	return a.cfg.Storage.Shared() == "", nil
}
