package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/fieldcrm/fieldcrm/internal/store/embedded"
	"github.com/fieldcrm/fieldcrm/models"
)

// migration is one numbered, idempotent step. Steps run in order at start-up and
// each is recorded in schema_migrations once done. Several replicas may start at
// once and run the same step: every step must therefore be safe to run twice
// (createIndexes and createCollection with "already exists" ignored are).
type migration struct {
	version int
	name    string
	up      func(ctx context.Context, s *Store) error
}

// migrations lists every step ever shipped. Append only: never edit or reorder a
// released step, add a new one.
func migrations() []migration {
	return []migration{
		{1, "create account collections and indexes", createAccountIndexes},
		{2, "create CRM collections and indexes", createCRMIndexes},
		{3, "index records by sync number", createSyncIndexes},
		{4, "embedded SQLite: drop the secondary indexes no query uses", dropUnusedSQLiteIndexes},
		{5, "create the collections of reminders and push", createNotifyCollections},
		{6, "create the collections of spreadsheet imports", createImportCollections},
		{7, "index customers by duplicate key", indexCustomerKeys},
		{8, "index customers by number and external reference", func(ctx context.Context, s *Store) error {
			_, err := s.RebuildCustomerKeys(ctx)
			return err
		}},
		{9, "index imports by state", indexImportsByState},
		{10, "create the collection of rows imports skipped", createImportSkips},
		// Created here, not by the first write: FerretDB v1 reads its catalogue
		// once, and a replica that did before another created the collection
		// fails to create it again (see embedded.LockStartup).
		{11, "create the collection of sync number reservations", func(ctx context.Context, s *Store) error {
			return s.ensureCollection(ctx, collSyncReservations)
		}},
		{12, "index every list, filter and sort", func(ctx context.Context, s *Store) error { return indexQueries(ctx, s, "") }},
		// Apart from 12: FerretDB's createIndexes fails (its connection
		// panics) when asked again for indexes a collection has.
		{13, "index the reports' tallies", func(ctx context.Context, s *Store) error { return indexQueries(ctx, s, "tally_") }},
		{14, "index the ranges lists take with what their pages test", indexSpans},
		{15, "create the collection of devices' sync rounds", func(ctx context.Context, s *Store) error {
			return s.ensureCollection(ctx, collSyncRounds)
		}},
		{16, "index the customers holding points", func(ctx context.Context, s *Store) error { return indexQueries(ctx, s, "flag_") }},
		{17, "index the customers by the times of their stage changes", indexMoves},
	}
}

type migrationRecord struct {
	ID        string    `bson:"_id"`
	Version   int       `bson:"version"`
	Name      string    `bson:"name"`
	AppliedAt time.Time `bson:"applied_at"`
}

// MigrationStatus is what Migrate did, for logs and tests.
type MigrationStatus struct {
	Applied      []int // versions run by this call
	Current      int   // highest version now recorded
	IDIndexesNew int   // embedded SQLite _id lookup indexes created
}

// Migrate brings the database to the newest schema and returns what it did.
// Replicas starting together take turns through a lock document: the steps are
// idempotent, but FerretDB v1.24 panics (and drops the connection) when two
// clients create indexes on one collection at the same moment.
func (s *Store) Migrate(ctx context.Context) (MigrationStatus, error) {
	release, err := s.lockMigrations(ctx)
	if err != nil {
		return MigrationStatus{}, err
	}
	defer release()
	var status MigrationStatus
	for _, m := range migrations() {
		id := fmt.Sprintf("%04d", m.version)
		var rec migrationRecord
		err := s.findByID(ctx, collMigrations, id, &rec)
		if err == nil {
			status.Current = m.version
			continue
		}
		if !errors.Is(err, models.ErrNotFound) {
			return status, fmt.Errorf("read migration %s: %w", id, err)
		}
		start := time.Now()
		if err := m.up(ctx, s); err != nil {
			return status, fmt.Errorf("migration %d (%s): %w", m.version, m.name, err)
		}
		rec = migrationRecord{ID: id, Version: m.version, Name: m.name, AppliedAt: time.Now().UTC()}
		// Another replica may have finished the same step first; that is fine.
		if err := s.insert(ctx, collMigrations, rec); err != nil && !errors.Is(err, models.ErrConflict) {
			return status, fmt.Errorf("record migration %d: %w", m.version, err)
		}
		s.log.InfoContext(ctx, "migration applied", "version", m.version, "name", m.name, "took", time.Since(start).String())
		status.Applied = append(status.Applied, m.version)
		status.Current = m.version
	}
	if s.sqliteDir != "" {
		// Collections are created by the steps above, so their tables exist now.
		n, err := embedded.IndexIDLookups(ctx, s.sqliteDir, s.db.Name())
		if err != nil {
			return status, fmt.Errorf("index _id lookups on embedded SQLite: %w", err)
		}
		status.IDIndexesNew = n
		if n > 0 {
			s.log.InfoContext(ctx, "embedded SQLite: added _id lookup indexes", "count", n)
		}
	}
	if s.tables != nil {
		n, err := s.tables.IndexSyncChanges(ctx, SyncedCollections)
		if err != nil {
			return status, fmt.Errorf("index sync changes on the embedded engine: %w", err)
		}
		if n > 0 {
			s.log.InfoContext(ctx, "embedded engine: added (tenant_id, seq) indexes", "count", n)
		}
		if direct, ok := s.tables.(QueryReader); ok {
			if n, err = direct.IndexQueries(ctx, queryIndexes, queryFields); err != nil {
				return status, fmt.Errorf("index queries on the embedded engine: %w", err)
			}
			if n > 0 {
				s.log.InfoContext(ctx, "embedded engine: added the indexes of lists, filters and sorts", "count", n)
			}
		}
		if direct, ok := s.tables.(tallyIndexer); ok {
			built, err := indexTallies(ctx, direct)
			if err != nil {
				return status, fmt.Errorf("index the reports' tallies on the embedded engine: %w", err)
			}
			if len(built) > 0 {
				s.log.InfoContext(ctx, "embedded engine: built the side tables of tallies", "collections", built)
			}
		}
		if direct, ok := s.tables.(FunnelReader); ok {
			built, err := direct.IndexMoves(ctx, customerMoves())
			if err != nil {
				return status, fmt.Errorf("index the customers' stage changes on the embedded engine: %w", err)
			}
			if built {
				s.log.InfoContext(ctx, "embedded engine: built the side table of the customers' stage changes")
			}
		}
	}
	return status, nil
}

// migrationLockTTL bounds how long a crashed replica's lock blocks the others.
const migrationLockTTL = 2 * time.Minute

const migrationLockID = "lock"

// lockMigrations waits until this process holds the migration lock and returns
// the function that releases it. The lock is an insert under a unique _id, which
// both MongoDB and FerretDB decide atomically.
func (s *Store) lockMigrations(ctx context.Context) (release func(), err error) {
	for {
		now := time.Now().UTC()
		lock := bson.D{{Key: "_id", Value: migrationLockID}, {Key: "expires_at", Value: now.Add(migrationLockTTL)}}
		err := s.insert(ctx, collMigrations, lock)
		if err == nil {
			return func() {
				_, _ = s.coll(collMigrations).DeleteOne(context.WithoutCancel(ctx), bson.D{{Key: "_id", Value: migrationLockID}})
			}, nil
		}
		if !errors.Is(err, models.ErrConflict) {
			return nil, fmt.Errorf("take migration lock: %w", err)
		}
		var held struct {
			ExpiresAt time.Time `bson:"expires_at"`
		}
		err = s.findByID(ctx, collMigrations, migrationLockID, &held)
		if err == nil && now.After(held.ExpiresAt) {
			s.log.WarnContext(ctx, "breaking an expired migration lock", "expired_at", held.ExpiresAt)
			_, _ = s.coll(collMigrations).DeleteOne(ctx, bson.D{{Key: "_id", Value: migrationLockID}, {Key: "expires_at", Value: held.ExpiresAt}})
			continue
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for migration lock: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// ensureCollection creates coll unless it exists. Creating collections up front,
// rather than on first insert, lets the embedded SQLite _id indexes be added at
// start-up for every collection.
func (s *Store) ensureCollection(ctx context.Context, coll string) error {
	err := s.db.CreateCollection(ctx, coll)
	var cmdErr mongo.CommandError
	if errors.As(err, &cmdErr) && (cmdErr.Code == 48 || cmdErr.Name == "NamespaceExists") {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create collection %s: %w", coll, err)
	}
	return nil
}

// index is a shorthand for one index: its name, keys in order, and whether unique.
type index struct {
	name   string
	keys   bson.D
	unique bool
}

func (s *Store) ensureIndexes(ctx context.Context, coll string, indexes ...index) error {
	if err := s.ensureCollection(ctx, coll); err != nil {
		return err
	}
	if s.sqliteDir != "" {
		// FerretDB on SQLite answers every query but {_id} by reading the whole
		// collection, so a secondary index only costs each write (a JSON parse
		// per index expression). Unique ones stay: they enforce a rule.
		indexes = slices.DeleteFunc(slices.Clone(indexes), func(ix index) bool { return !ix.unique })
	}
	if len(indexes) == 0 {
		return nil
	}
	models := make([]mongo.IndexModel, len(indexes))
	for i, ix := range indexes {
		opts := options.Index().SetName(ix.name)
		if ix.unique {
			opts.SetUnique(true)
		}
		models[i] = mongo.IndexModel{Keys: ix.keys, Options: opts}
	}
	if _, err := s.coll(coll).Indexes().CreateMany(ctx, models); err != nil {
		return fmt.Errorf("create indexes on %s: %w", coll, err)
	}
	return nil
}

// dropUnusedSQLiteIndexes is migration 4: on embedded SQLite it drops the
// non-unique indexes earlier steps created (see ensureIndexes); elsewhere it
// does nothing.
func dropUnusedSQLiteIndexes(ctx context.Context, s *Store) error {
	if s.sqliteDir == "" {
		return nil
	}
	colls, err := s.db.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		return fmt.Errorf("list collections: %w", err)
	}
	for _, coll := range colls {
		var specs []struct {
			Name   string `bson:"name"`
			Unique bool   `bson:"unique"`
		}
		cur, err := s.coll(coll).Indexes().List(ctx)
		if err == nil {
			err = cur.All(ctx, &specs)
		}
		if err != nil {
			return fmt.Errorf("list indexes of %s: %w", coll, err)
		}
		for _, spec := range specs {
			if spec.Unique || spec.Name == "_id_" {
				continue
			}
			if _, err := s.coll(coll).Indexes().DropOne(ctx, spec.Name); err != nil {
				return fmt.Errorf("drop index %s of %s: %w", spec.Name, coll, err)
			}
		}
	}
	return nil
}

func asc(fields ...string) bson.D {
	d := make(bson.D, len(fields))
	for i, f := range fields {
		d[i] = bson.E{Key: f, Value: 1}
	}
	return d
}

// createAccountIndexes is migration 1. Every index on tenant data starts with
// tenant_id so that on MongoDB a tenant's queries touch only its own range, and a
// sharded deployment can shard on it.
func createAccountIndexes(ctx context.Context, s *Store) error {
	steps := []struct {
		coll    string
		indexes []index
	}{
		{collTenants, nil},
		{collUsers, []index{
			{"email_unique", asc("email"), true}, // logins are global, so e-mails are too
			{"tenant_team", asc("tenant_id", "team_id"), false},
		}},
		{collTeams, []index{{"tenant_manager", asc("tenant_id", "manager_id"), false}}},
		{collSessions, []index{{"tenant_user", asc("tenant_id", "user_id"), false}}},
		{collRefreshTokens, []index{{"family", asc("family_id"), false}}},
		{collRotations, nil},
		{collMigrations, nil},
	}
	for _, st := range steps {
		if err := s.ensureIndexes(ctx, st.coll, st.indexes...); err != nil {
			return err
		}
	}
	return nil
}
