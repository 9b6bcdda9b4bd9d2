package app

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

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

// OpenStorage opens the database as New does and migrates it, for commands
// that need the store alone. closeStore releases everything, also after an
// error.
func OpenStorage(ctx context.Context, cfg Storage, log *slog.Logger) (st *store.Store, closeStore func(context.Context), err error) {
	return openObservedStorage(ctx, cfg, log, nil)
}

// openObservedStorage is OpenStorage with the store's calls told to calls
// (nil: to no one).
func openObservedStorage(ctx context.Context, cfg Storage, log *slog.Logger, calls store.CallObserver) (st *store.Store, closeStore func(context.Context), err error) {
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
			return nil, closeStore, err
		}
		defer release()
	}
	storeCfg, closeEngine, err := openEngine(ctx, cfg, log)
	if err != nil {
		return nil, closeStore, err
	}
	closers = append(closers, closeEngine)
	storeCfg.Calls = calls
	st, err = store.Open(ctx, storeCfg)
	if err != nil {
		return nil, closeStore, fmt.Errorf("open the store: %w", err)
	}
	closers = append(closers, func(ctx context.Context) { _ = st.Close(ctx) })
	status, err := st.Migrate(ctx)
	if err != nil {
		return nil, closeStore, err
	}
	log.Info("database schema ready", "version", status.Current, "applied_now", status.Applied)
	return st, closeStore, nil
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
	st, closeStore, err := openObservedStorage(ctx, a.cfg.Storage, a.log, a.Telemetry.Database)
	a.closers = append(a.closers, closeStore)
	if err != nil {
		return false, err
	}
	a.Store = st
	return a.cfg.Storage.Shared() == "", nil
}
