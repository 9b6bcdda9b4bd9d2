// Package testenv gives integration tests real servers: the embedded FerretDB
// (SQLite by default, PostgreSQL when FERRETDB_POSTGRESQL_URL is set) and Redis
// (miniredis by default, a real server when REDIS_URL is set). With
// MONGODB_URI set, tests use that server instead, through the driver alone
// (no direct table access): the code a MongoDB deployment runs. One FerretDB runs
// per test package; every test gets its own database and Redis key prefix, so
// tests, packages and parallel CI runs never see each other's data.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/fieldcrm/fieldcrm/internal/store"
	"github.com/fieldcrm/fieldcrm/internal/store/embedded"
)

// Env is the servers one test package shares. Create it in TestMain with Main.
type Env struct {
	// ferret is the embedded FerretDB; nil when mongoURI names a server.
	ferret *embedded.Ferret
	// postgreSQLURL is the database of FerretDB's tables on PostgreSQL.
	postgreSQLURL string
	mongoURI      string
	dir           string
	dropPG        func()
	redisURL      string
}

// Start launches the embedded FerretDB. Call Stop when the package's tests end.
func Start() (*Env, error) {
	if uri := os.Getenv("MONGODB_URI"); uri != "" {
		return &Env{mongoURI: uri, dropPG: func() {}, redisURL: os.Getenv("REDIS_URL")}, nil
	}
	dir, err := os.MkdirTemp("", "fieldcrm-test-*")
	if err != nil {
		return nil, fmt.Errorf("make temp dir: %w", err)
	}
	cfg := embedded.Config{SQLiteDir: dir, Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))}
	dropPG := func() {}
	if os.Getenv("FERRETDB_POSTGRESQL_URL") != "" {
		url, drop, err := NewPostgreSQLDatabase(context.Background())
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		cfg.PostgreSQLURL, dropPG = url, drop
	}
	f, err := embedded.StartFerret(context.Background(), cfg)
	if err != nil {
		dropPG()
		os.RemoveAll(dir)
		return nil, err
	}
	return &Env{ferret: f, postgreSQLURL: cfg.PostgreSQLURL, dir: dir, dropPG: dropPG, redisURL: os.Getenv("REDIS_URL")}, nil
}

// NewPostgreSQLDatabase creates an empty PostgreSQL database next to the one
// FERRETDB_POSTGRESQL_URL names and returns its URL and a function that drops it.
// Each FerretDB process needs a database of its own: FerretDB loads the metadata
// of every schema in its database, and fails when another process drops one of
// them at that moment.
func NewPostgreSQLDatabase(ctx context.Context) (string, func(), error) {
	base, err := url.Parse(os.Getenv("FERRETDB_POSTGRESQL_URL"))
	if err != nil {
		return "", nil, fmt.Errorf("parse FERRETDB_POSTGRESQL_URL: %w", err)
	}
	conn, err := pgx.Connect(ctx, base.String())
	if err != nil {
		return "", nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	name := UniqueName("fieldcrm_test")
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		conn.Close(ctx)
		return "", nil, fmt.Errorf("create database %s: %w", name, err)
	}
	conn.Close(ctx)
	own := *base
	own.Path = "/" + name
	drop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if c, err := pgx.Connect(ctx, base.String()); err == nil {
			_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			c.Close(ctx)
		}
	}
	return own.String(), drop, nil
}

// Main is TestMain's body: it starts the servers, runs the tests and stops them.
func Main(m *testing.M, env **Env) {
	e, err := Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "testenv:", err)
		os.Exit(1)
	}
	*env = e
	code := m.Run()
	e.Stop()
	os.Exit(code)
}

// Stop shuts the servers down and removes temporary files.
func (e *Env) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if e.ferret != nil {
		_ = e.ferret.Close(ctx)
	}
	e.dropPG()
	if e.dir != "" {
		_ = os.RemoveAll(e.dir)
	}
}

// MongoURI is the address of the database server: the embedded FerretDB, or
// MONGODB_URI.
func (e *Env) MongoURI() string {
	if e.ferret == nil {
		return e.mongoURI
	}
	return e.ferret.URI()
}

// SQLiteDir is the SQLite directory, or "" when running on PostgreSQL or
// MONGODB_URI.
func (e *Env) SQLiteDir() string {
	if e.ferret == nil {
		return ""
	}
	return e.ferret.SQLiteDir()
}

// DriverOnly reports whether the store talks to the database through the
// driver alone (MONGODB_URI), without the embedded engine's direct tables.
func (e *Env) DriverOnly() bool { return e.ferret == nil }

// DiscardLogger is a logger for code under test whose logs nobody reads.
func DiscardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// UniqueName returns a short name unique to this run, prefixed for readability.
func UniqueName(prefix string) string {
	var b [5]byte
	_, _ = rand.Read(b[:])
	return prefix + "_" + hex.EncodeToString(b[:])
}

// StoreConfig returns a store configuration for a new database of its own.
func (e *Env) StoreConfig(t testing.TB) store.Config {
	t.Helper()
	return e.StoreConfigFor(t, UniqueName("t"))
}

// StoreConfigFor returns a store configuration for database db, which
// another store may be using already (a second replica).
func (e *Env) StoreConfigFor(t testing.TB, db string) store.Config {
	t.Helper()
	if e.ferret == nil {
		return store.Config{URI: e.mongoURI, Database: db, Logger: DiscardLogger()}
	}
	tables, err := e.ferret.Tables(db)
	if err != nil {
		t.Fatalf("open direct table reader: %v", err)
	}
	t.Cleanup(func() { _ = tables.Close() })
	cfg := store.Config{
		URI:       e.MongoURI(),
		Database:  db,
		SQLiteDir: e.SQLiteDir(),
		Tables:    tables,
		Logger:    DiscardLogger(),
	}
	if tables.ByID() {
		cfg.ByID = tables
	}
	return cfg
}

// Store opens a migrated store on a fresh database that is dropped when t ends.
func (e *Env) Store(t testing.TB) *store.Store {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, e.StoreConfig(t))
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	t.Cleanup(func() {
		_ = st.DropDatabase(ctx)
		_ = st.Close(ctx)
	})
	return st
}

// Redis is a Redis server for one test: a client and a key prefix of its own.
type Redis struct {
	t      testing.TB
	Client redis.UniversalClient
	Prefix string
	mini   *miniredis.Miniredis
}

// Advance lets d pass for key expiry. miniredis is told so; on a real server
// every key of the prefix that expires has its time to live shortened by d,
// and is deleted when that runs it out. Either way the test states how much
// time passes, and nothing waits: a test that sets a window of a minute and
// advances past it behaves the same on a slow machine as on a fast one.
func (r *Redis) Advance(d time.Duration) {
	r.t.Helper()
	if r.mini != nil {
		r.mini.FastForward(d)
		return
	}
	ctx := context.Background()
	iter := r.Client.Scan(ctx, 0, r.Prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		if err := shortenTTL.Run(ctx, r.Client, []string{iter.Val()}, d.Milliseconds()).Err(); err != nil && !errors.Is(err, redis.Nil) {
			r.t.Fatalf("advance %s by %s: %v", iter.Val(), d, err)
		}
	}
	if err := iter.Err(); err != nil {
		r.t.Fatalf("advance by %s: %v", d, err)
	}
}

// shortenTTL takes ARGV[1] ms off a key's time to live, deleting the key when
// that leaves none; a key without one never expires and is left alone.
var shortenTTL = redis.NewScript(`
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then return 0 end
if ttl <= tonumber(ARGV[1]) then return redis.call('DEL', KEYS[1]) end
return redis.call('PEXPIRE', KEYS[1], ttl - tonumber(ARGV[1]))`)

// Redis returns the test's Redis. With REDIS_URL set it is the real server (keys
// under the prefix are deleted when t ends); otherwise a fresh miniredis.
func (e *Env) Redis(t testing.TB) *Redis {
	t.Helper()
	prefix := UniqueName("test") + ":"
	if e.redisURL == "" {
		mr := miniredis.NewMiniRedis()
		if err := mr.StartAddr("127.0.0.1:0"); err != nil {
			t.Fatalf("start miniredis: %v", err)
		}
		client := redis.NewClient(&redis.Options{Addr: mr.Addr()})
		t.Cleanup(func() { _ = client.Close(); mr.Close() })
		return &Redis{t: t, Client: client, Prefix: prefix, mini: mr}
	}
	opts, err := redis.ParseURL(e.redisURL)
	if err != nil {
		t.Fatalf("parse REDIS_URL: %v", err)
	}
	r := &Redis{t: t, Client: redis.NewClient(opts), Prefix: prefix}
	t.Cleanup(func() {
		_ = r.deleteKeys(context.Background())
		_ = r.Client.Close()
	})
	return r
}

// Flush deletes every key of this test's prefix, as a Redis restarted without
// persistence (or replaced) would have lost them.
func (r *Redis) Flush(t testing.TB) {
	t.Helper()
	if err := r.deleteKeys(context.Background()); err != nil {
		t.Fatalf("flush: %v", err)
	}
}

// deleteKeys deletes every key of the prefix.
func (r *Redis) deleteKeys(ctx context.Context) error {
	return DeleteKeys(ctx, r.Client, r.Prefix)
}

// DeleteKeys deletes every key that starts with prefix.
func DeleteKeys(ctx context.Context, client redis.UniversalClient, prefix string) error {
	iter := client.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		if err := client.Del(ctx, iter.Val()).Err(); err != nil {
			return fmt.Errorf("delete %s: %w", iter.Val(), err)
		}
	}
	return iter.Err()
}
