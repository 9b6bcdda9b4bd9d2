// Package store is fieldcrm's MongoDB persistence: the collections, their indexes,
// the migrations and every query. It is the only package that builds BSON filters.
//
// The same code runs against MongoDB and the embedded FerretDB v1.24, which shapes
// it: no multi-document transactions, and no atomic read-modify-write either
// (FerretDB's findAndModify and conditional updates read, then write by _id, with
// nothing in between held). The one write FerretDB makes atomic is an insert under a
// unique index, so every "exactly once" decision here (refresh-token rotation,
// claims) is an insert that either wins or fails with a duplicate key. Hot paths
// look documents up by _id alone, the only filter FerretDB pushes down to SQL.
package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/bsoncodec"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
	"go.mongodb.org/mongo-driver/mongo/readpref"

	"github.com/fieldcrm/fieldcrm/internal/store/embedded"
	"github.com/fieldcrm/fieldcrm/models"
)

// Collection names.
const (
	collTenants       = "tenants"
	collUsers         = "users"
	collTeams         = "teams"
	collSessions      = "sessions"
	collRefreshTokens = "refresh_tokens"
	collRotations     = "refresh_rotations"
	collMigrations    = "schema_migrations"
)

// Config says where the database is.
type Config struct {
	// URI is a mongodb:// or mongodb+srv:// connection string.
	URI string
	// Database is the database name inside the deployment.
	Database string
	// SQLiteDir is set when URI points at an embedded FerretDB on SQLite; the store
	// then adds the _id lookup indexes FerretDB lacks (see package embedded).
	SQLiteDir string
	// Tables, when set, answers sync change queries straight from the SQL
	// tables under an embedded FerretDB (see embedded.Tables). Whoever made
	// it closes it, after the store: several stores may share one.
	Tables ChangeReader
	// ByID, when set, reads and writes single documents by _id without the
	// query engine (embedded.Tables on SQLite).
	ByID IDTables
	// Logger receives migration progress; nil means slog.Default().
	Logger *slog.Logger
	// MigrationLease is how long the migration lock lasts unless its holder
	// renews it (0: DefaultMigrationLease); tests shorten it.
	MigrationLease time.Duration
	// ExtraMigrations are steps after the shipped ones, for tests: they stand
	// for the steps of a newer binary.
	ExtraMigrations []Migration
	// Calls, when set, hears of every database call: each command the
	// driver sends, and each read or write by _id that ByID makes.
	Calls CallObserver
}

// CallObserver hears of database calls, for metrics and traces (package
// telemetry implements it).
type CallObserver interface {
	// Call says operation starts (a command's name, such as find or
	// insert, or a direct read or write by _id: byid_get, byid_write,
	// byid_delete). It returns the context the call goes on with and the
	// function to call with its outcome when it ends.
	Call(ctx context.Context, operation string) (context.Context, func(error))
}

// Store reads and writes fieldcrm's documents. It is safe for concurrent use.
type Store struct {
	client    *mongo.Client
	db        *mongo.Database
	sqliteDir string
	tables    ChangeReader
	byID      IDTables
	log       *slog.Logger
	turns     *turns
	// keyLocks serializes this process's writes of each customer key
	// document (see collCustomerKeys).
	keyLocks keyLocks
	// registry encodes the documents the store writes (see newRegistry).
	registry *bsoncodec.Registry
	// migrationLease and extraMigrations: see Config.
	migrationLease  time.Duration
	extraMigrations []Migration
	// calls hears of the reads the embedded engines answer in SQL (see
	// observe); nil: nobody.
	calls CallObserver
}

// IDTables reads and writes documents by _id without the query engine: what
// embedded.Tables does on SQLite, where each such operation through FerretDB
// costs several times the SQL statement it ends in. An error that matches
// errors.ErrUnsupported sends the operation through the driver.
type IDTables interface {
	// Get returns the document with _id id, or models.ErrNotFound.
	Get(ctx context.Context, coll, id string) (bson.Raw, error)
	// Write makes all the writes or none; an insert of an existing _id or a
	// replace of a missing one fails with models.ErrConflict.
	Write(ctx context.Context, writes ...embedded.DocWrite) error
	// Delete removes the document with _id id, if any.
	Delete(ctx context.Context, coll, id string) error
}

// ChangeReader reads records by sync number without the query engine: what
// embedded.Tables does for FerretDB, whose own answer to such a query decodes
// every document of the collection.
type ChangeReader interface {
	// IndexSyncChanges indexes the tables of colls by (tenant_id, seq) and
	// says how many indexes it created.
	IndexSyncChanges(ctx context.Context, colls []string) (int, error)
	// Changes returns, in seq order, at most limit documents of coll with
	// tenant_id tenant and after < seq <= upTo, deleted ones included.
	Changes(ctx context.Context, coll, tenant string, after, upTo int64, limit int) ([]bson.Raw, error)
	// HighestSeq returns the highest seq of tenant's documents in coll, or 0.
	HighestSeq(ctx context.Context, coll, tenant string) (int64, error)
	// IndexNumbered indexes the tables of colls by (tenant_id, seq), for
	// HighestSeq on collections no pull reads, and says how many indexes
	// it created.
	IndexNumbered(ctx context.Context, colls []string) (int, error)
}

// Open connects to the database and checks that it answers. Close releases it.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Database == "" {
		return nil, errors.New("open store: database name is empty")
	}
	registry, err := newRegistry()
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	opts := options.Client().ApplyURI(cfg.URI).SetRegistry(registry).
		SetServerSelectionTimeout(10 * time.Second).
		SetConnectTimeout(10 * time.Second)
	byID := cfg.ByID
	if cfg.Calls != nil {
		opts.SetMonitor(commandMonitor(cfg.Calls))
		if byID != nil {
			byID = observedIDTables{next: byID, calls: cfg.Calls}
		}
	}
	client, err := mongo.Connect(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", redactURI(cfg.URI), err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := client.Ping(pingCtx, readpref.Primary()); err != nil {
		_ = client.Disconnect(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("ping %s: %w", redactURI(cfg.URI), err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Store{client: client, db: client.Database(cfg.Database), sqliteDir: cfg.SQLiteDir, tables: cfg.Tables, byID: byID, log: log, turns: &turns{}, registry: registry,
		migrationLease: cfg.MigrationLease, extraMigrations: cfg.ExtraMigrations, calls: cfg.Calls}, nil
}

// Ping checks that the primary answers; /readyz uses it.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.client.Ping(ctx, readpref.Primary()); err != nil {
		return fmt.Errorf("ping mongodb: %w", err)
	}
	return nil
}

// Close disconnects, waiting for in-flight operations at most until ctx ends.
func (s *Store) Close(ctx context.Context) error {
	if err := s.client.Disconnect(ctx); err != nil {
		return fmt.Errorf("disconnect mongodb: %w", err)
	}
	return nil
}

// DropDatabase removes every collection of the store's database. Tests use it.
func (s *Store) DropDatabase(ctx context.Context) error {
	if err := s.db.Drop(ctx); err != nil {
		return fmt.Errorf("drop database %s: %w", s.db.Name(), err)
	}
	return nil
}

func (s *Store) coll(name string) *mongo.Collection { return s.db.Collection(name) }

// findByID loads the document with _id id into out. The filter is exactly {_id},
// the one shape FerretDB answers without scanning (with the embedded index).
func (s *Store) findByID(ctx context.Context, coll, id string, out any) error {
	if s.byID != nil {
		raw, err := s.byID.Get(ctx, coll, id)
		switch {
		case err == nil:
			if err := bson.Unmarshal(raw, out); err != nil {
				return fmt.Errorf("decode %s %s: %w", coll, id, err)
			}
			return nil
		case errors.Is(err, models.ErrNotFound):
			return models.ErrNotFound
		case !errors.Is(err, errors.ErrUnsupported):
			return err
		}
	}
	if err := s.coll(coll).FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(out); err != nil {
		return notFoundOr(err, "find "+coll+" "+id)
	}
	return nil
}

// insert adds doc, turning a duplicate key into models.ErrConflict.
func (s *Store) insert(ctx context.Context, coll string, doc any) error {
	if err := s.writeDirect(ctx, direct{coll: coll, doc: doc}); !errors.Is(err, errors.ErrUnsupported) {
		return err
	}
	_, err := s.coll(coll).InsertOne(ctx, doc)
	if mongo.IsDuplicateKeyError(err) {
		return fmt.Errorf("insert into %s: %w", coll, models.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("insert into %s: %w", coll, err)
	}
	return nil
}

// direct is one write for writeDirect.
type direct struct {
	coll    string
	doc     any
	replace bool
}

// writeDirect makes the writes atomically through IDTables, or returns an
// error matching errors.ErrUnsupported when the caller must use the driver.
func (s *Store) writeDirect(ctx context.Context, writes ...direct) error {
	if s.byID == nil {
		return errors.ErrUnsupported
	}
	docs := make([]embedded.DocWrite, len(writes))
	for i, w := range writes {
		raw, err := s.marshal(w.doc)
		if err != nil {
			return fmt.Errorf("encode a %s document: %w", w.coll, err)
		}
		docs[i] = embedded.DocWrite{Coll: w.coll, Doc: raw, Replace: w.replace}
	}
	return s.byID.Write(ctx, docs...)
}

// deleteByID removes the document with _id id, if any.
func (s *Store) deleteByID(ctx context.Context, coll, id string) error {
	if s.byID != nil {
		if err := s.byID.Delete(ctx, coll, id); !errors.Is(err, errors.ErrUnsupported) {
			return err
		}
	}
	if _, err := s.coll(coll).DeleteOne(ctx, bson.D{{Key: "_id", Value: id}}); err != nil {
		return fmt.Errorf("delete %s %s: %w", coll, id, err)
	}
	return nil
}

// redactURI hides credentials and options so connection errors can be logged.
func redactURI(uri string) string {
	u, err := url.Parse(uri)
	if err != nil {
		return "mongodb (unparsable URI)"
	}
	return u.Scheme + "://" + u.Host
}

// DatabaseName is the name of the store's database.
func (s *Store) DatabaseName() string { return s.db.Name() }
