package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/fieldcrm/fieldcrm/internal/store/embedded"
	"github.com/fieldcrm/fieldcrm/models"
)

// Migration is one numbered, idempotent step of the schema. Steps run in order
// (`fieldcrm migrate`, or serve at start with FIELDCRM_MIGRATE=auto) and each is
// recorded in schema_migrations once done. A runner that died halfway leaves
// its step unrecorded, and the next runner runs it again: every step must
// therefore be safe to run twice (createIndexes and createCollection with
// "already exists" ignored are).
type Migration struct {
	Version int
	Name    string
	Up      func(ctx context.Context, s *Store) error
	// KeepsOlderBinaries says a binary that does not know this step still
	// works against a database that has it: the step only adds (an index, a
	// collection, a field nobody older reads). A binary refuses to serve a
	// database with a step it does not know unless the step says so; the
	// flag is recorded with the step, because the older binary cannot know it.
	KeepsOlderBinaries bool
}

// migrations lists every step ever shipped. Append only: never edit or reorder a
// released step, add a new one (and see docs/operations.md, "Upgrades and
// rollbacks", for what a step may do).
func migrations() []Migration {
	return []Migration{
		{Version: 1, Name: "create account collections and indexes", Up: createAccountIndexes},
		{Version: 2, Name: "create CRM collections and indexes", Up: createCRMIndexes},
		{Version: 3, Name: "index records by sync number", Up: createSyncIndexes},
		{Version: 4, Name: "embedded SQLite: drop the secondary indexes no query uses", Up: dropUnusedSQLiteIndexes},
		{Version: 5, Name: "create the collections of reminders and push", Up: createNotifyCollections},
		{Version: 6, Name: "create the collections of spreadsheet imports", Up: createImportCollections},
		{Version: 7, Name: "index customers by duplicate key", Up: indexCustomerKeys},
		{Version: 8, Name: "index customers by number and external reference", Up: func(ctx context.Context, s *Store) error {
			_, err := s.RebuildCustomerKeys(ctx)
			return err
		}},
		{Version: 9, Name: "index imports by state", Up: indexImportsByState},
		{Version: 10, Name: "create the collection of rows imports skipped", Up: createImportSkips},
		// Created here, not by the first write: FerretDB v1 reads its catalogue
		// once, and a replica that did before another created the collection
		// fails to create it again (see embedded.LockStartup).
		{Version: 11, Name: "create the collection of sync number reservations", Up: func(ctx context.Context, s *Store) error {
			return s.ensureCollection(ctx, collSyncReservations)
		}},
		{Version: 12, Name: "index every list, filter and sort", Up: func(ctx context.Context, s *Store) error { return indexQueries(ctx, s, "") }},
		// Apart from 12: FerretDB's createIndexes fails (its connection
		// panics) when asked again for indexes a collection has.
		{Version: 13, Name: "index the reports' tallies", Up: func(ctx context.Context, s *Store) error { return indexQueries(ctx, s, "tally_") }},
		{Version: 14, Name: "index the ranges lists take with what their pages test", Up: indexSpans},
		{Version: 15, Name: "create the collection of devices' sync rounds", Up: func(ctx context.Context, s *Store) error {
			return s.ensureCollection(ctx, collSyncRounds)
		}},
		{Version: 16, Name: "index the customers holding points", Up: func(ctx context.Context, s *Store) error { return indexQueries(ctx, s, "flag_") }},
		{Version: 17, Name: "index the customers by the times of their stage changes", Up: indexMoves},
		// On a database made before tally_due joined migration 13's group.
		{Version: 18, Name: "index the follow-ups' due and completion times for the activity report", KeepsOlderBinaries: true,
			Up: func(ctx context.Context, s *Store) error { return indexQuery(ctx, s, Tasks, "tally_due") }},
		{Version: 19, Name: "index the deleted records by when, for the purge of old tombstones", KeepsOlderBinaries: true,
			Up: func(ctx context.Context, s *Store) error { return indexQueries(ctx, s, "purge_") }},
		{Version: 20, Name: "index the audit log by time, collection and record", KeepsOlderBinaries: true,
			Up: func(ctx context.Context, s *Store) error { return indexQueries(ctx, s, "audit_") }},
	}
}

// steps are the migrations this store knows: the shipped ones, then those a
// test added (Config.ExtraMigrations).
func (s *Store) steps() []Migration {
	return append(migrations(), s.extraMigrations...)
}

type migrationRecord struct {
	ID        string    `bson:"_id"`
	Version   int       `bson:"version"`
	Name      string    `bson:"name"`
	AppliedAt time.Time `bson:"applied_at"`
	// KeepsOlderBinaries is Migration.KeepsOlderBinaries, for the binaries
	// that do not know the step.
	KeepsOlderBinaries bool `bson:"keeps_older_binaries,omitempty"`
}

// MigrationStatus is what Migrate did, for logs and tests.
type MigrationStatus struct {
	Applied      []int // versions run by this call
	Current      int   // highest version now recorded
	Binary       int   // newest version this binary knows
	IDIndexesNew int   // embedded SQLite _id lookup indexes created
}

// Schema compares the schema recorded in the database with the one this
// binary knows.
type Schema struct {
	// Database is the highest step recorded in the database (0: none).
	Database int
	// Binary is the newest step this binary knows.
	Binary int
	// Pending are the steps this binary knows that the database lacks.
	Pending []int
}

// SchemaNewerError says the database has a step this binary does not know
// and that step did not declare older binaries safe: serving it could
// misread or damage what the newer binary wrote.
type SchemaNewerError struct {
	Database, Binary int
	// Step is the first unknown step that refuses older binaries.
	Step int
	Name string
}

func (e *SchemaNewerError) Error() string {
	return fmt.Sprintf("the database schema is version %d, newer than this binary's %d (step %d, %q, does not let older binaries use it): run a fieldcrm that knows schema %d or newer, or restore a backup taken before that migration",
		e.Database, e.Binary, e.Step, e.Name, e.Database)
}

// Schema reads the schema the database records and compares it with this
// binary's. It fails with a *SchemaNewerError when the database has a step
// this binary does not know that does not keep older binaries working.
func (s *Store) Schema(ctx context.Context) (Schema, error) {
	steps := s.steps()
	sc := Schema{Binary: steps[len(steps)-1].Version}
	cur, err := s.coll(collMigrations).Find(ctx, bson.D{{Key: "version", Value: bson.D{{Key: "$gt", Value: 0}}}})
	if err != nil {
		return sc, fmt.Errorf("read the schema version: %w", err)
	}
	var records []migrationRecord
	if err := cur.All(ctx, &records); err != nil {
		return sc, fmt.Errorf("read the schema version: %w", err)
	}
	slices.SortFunc(records, func(a, b migrationRecord) int { return a.Version - b.Version })
	applied := map[int]bool{}
	var refusing *migrationRecord
	for i, r := range records {
		applied[r.Version] = true
		sc.Database = max(sc.Database, r.Version)
		if r.Version > sc.Binary && !r.KeepsOlderBinaries && refusing == nil {
			refusing = &records[i]
		}
	}
	for _, m := range steps {
		if !applied[m.Version] {
			sc.Pending = append(sc.Pending, m.Version)
		}
	}
	if refusing != nil {
		return sc, &SchemaNewerError{Database: sc.Database, Binary: sc.Binary, Step: refusing.Version, Name: refusing.Name}
	}
	return sc, nil
}

// Migrate brings the database to the newest schema and returns what it did.
// Runners (`fieldcrm migrate`, replicas starting with FIELDCRM_MIGRATE=auto)
// take turns through a lock document that the holder renews while it works
// (see migrationLock): the steps are idempotent, but FerretDB v1.24 panics
// (and drops the connection) when two clients create indexes on one
// collection at the same moment, and a long step must not be run twice at
// once. It refuses, before running anything, a database whose schema is
// newer than this binary's (see Schema).
func (s *Store) Migrate(ctx context.Context) (MigrationStatus, error) {
	lock, err := s.lockMigrations(ctx)
	if err != nil {
		return MigrationStatus{}, err
	}
	defer lock.release()
	// Steps run on the lock's context: it ends when the lock is lost, so a
	// runner that finds another holding it stops rather than racing that one.
	status, err := s.migrateSteps(lock.ctx)
	if err != nil && lock.lost() {
		return status, fmt.Errorf("%w (%w)", errMigrationLockLost, err)
	}
	if err != nil {
		return status, err
	}
	// Still under the lock, but not ended by its loss: every step is
	// recorded, and what follows only ensures what the embedded engines
	// keep beside FerretDB's tables, which serve does without the lock too
	// (see EnsureEngineIndexes). On SQLite its DDL can hold the database for
	// longer than a short lease, holding the renewals up behind it.
	err = s.ensureEngineIndexes(ctx, &status)
	return status, err
}

// errMigrationLockLost ends a migration whose lock another runner took.
var errMigrationLockLost = errors.New("migration stopped: this runner lost the migration lock (it could not renew it in time, and another runner took it over)")

func (s *Store) migrateSteps(ctx context.Context) (MigrationStatus, error) {
	var status MigrationStatus
	schema, err := s.Schema(ctx)
	if err != nil {
		return status, err
	}
	status.Current, status.Binary = schema.Database, schema.Binary
	pending := map[int]bool{}
	for _, v := range schema.Pending {
		pending[v] = true
	}
	for _, m := range s.steps() {
		if !pending[m.Version] {
			continue
		}
		id := fmt.Sprintf("%04d", m.Version)
		start := time.Now()
		if err := m.Up(ctx, s); err != nil {
			return status, fmt.Errorf("migration %d (%s): %w", m.Version, m.Name, err)
		}
		if err := ctx.Err(); err != nil {
			return status, fmt.Errorf("migration %d (%s): %w", m.Version, m.Name, err)
		}
		rec := migrationRecord{ID: id, Version: m.Version, Name: m.Name, AppliedAt: time.Now().UTC(), KeepsOlderBinaries: m.KeepsOlderBinaries}
		// Another runner may have finished the same step first (an older
		// binary's start that took the lock after this one's expired); that
		// is fine.
		if err := s.insert(ctx, collMigrations, rec); err != nil && !errors.Is(err, models.ErrConflict) {
			return status, fmt.Errorf("record migration %d: %w", m.Version, err)
		}
		s.log.InfoContext(ctx, "migration applied", "version", m.Version, "name", m.Name, "took", time.Since(start).String())
		status.Applied = append(status.Applied, m.Version)
		status.Current = max(status.Current, m.Version)
	}
	return status, nil
}

// EnsureEngineIndexes adds what the embedded engines keep beside FerretDB's
// tables (the _id lookup indexes on SQLite, the side tables of sync changes,
// lists, tallies and stage changes): idempotent, and checked at every start,
// also by a serve that leaves the migrations to `fieldcrm migrate`. Replicas
// on one PostgreSQL database run it under embedded.LockStartup; on SQLite
// one process owns the files; MongoDB has none of it.
func (s *Store) EnsureEngineIndexes(ctx context.Context) error {
	var status MigrationStatus
	return s.ensureEngineIndexes(ctx, &status)
}

func (s *Store) ensureEngineIndexes(ctx context.Context, status *MigrationStatus) error {
	if s.sqliteDir != "" {
		// Collections are created by the steps above, so their tables exist now.
		n, err := embedded.IndexIDLookups(ctx, s.sqliteDir, s.db.Name())
		if err != nil {
			return fmt.Errorf("index _id lookups on embedded SQLite: %w", err)
		}
		status.IDIndexesNew = n
		if n > 0 {
			s.log.InfoContext(ctx, "embedded SQLite: added _id lookup indexes", "count", n)
		}
	}
	if s.tables != nil {
		n, err := s.tables.IndexSyncChanges(ctx, SyncedCollections)
		if err != nil {
			return fmt.Errorf("index sync changes on the embedded engine: %w", err)
		}
		if n > 0 {
			s.log.InfoContext(ctx, "embedded engine: added (tenant_id, seq) indexes", "count", n)
		}
		if n, err = s.tables.IndexNumbered(ctx, []string{collCustomerNumbers}); err != nil {
			return fmt.Errorf("index the customer-number claims on the embedded engine: %w", err)
		}
		if n > 0 {
			s.log.InfoContext(ctx, "embedded engine: added the (tenant_id, seq) index of customer-number claims")
		}
		if direct, ok := s.tables.(QueryReader); ok {
			if n, err = direct.IndexQueries(ctx, queryIndexes, queryFields); err != nil {
				return fmt.Errorf("index queries on the embedded engine: %w", err)
			}
			if n > 0 {
				s.log.InfoContext(ctx, "embedded engine: added the indexes of lists, filters and sorts", "count", n)
			}
		}
		if direct, ok := s.tables.(tallyIndexer); ok {
			built, err := indexTallies(ctx, direct)
			if err != nil {
				return fmt.Errorf("index the reports' tallies on the embedded engine: %w", err)
			}
			if len(built) > 0 {
				s.log.InfoContext(ctx, "embedded engine: built the side tables of tallies", "collections", built)
			}
		}
		if direct, ok := s.tables.(FunnelReader); ok {
			built, err := direct.IndexMoves(ctx, customerMoves())
			if err != nil {
				return fmt.Errorf("index the customers' stage changes on the embedded engine: %w", err)
			}
			if built {
				s.log.InfoContext(ctx, "embedded engine: built the side table of the customers' stage changes")
			}
		}
	}
	return nil
}

// DefaultMigrationLease is how long a migration lock lasts unless renewed:
// what a runner that died (killed, its node lost) blocks the others for.
const DefaultMigrationLease = 2 * time.Minute

const migrationLockID = "lock"

// migrationLock is the lock document a migration runner holds. Its holder
// renews it every lease/3 while the steps run, so a long step keeps it
// however long it takes, while a holder that died stops renewing and its
// lock expires within a lease. A holder that cannot renew in time (its
// renewal found the lock gone or someone else's) cancels ctx: it must not
// go on beside the runner that took over.
type migrationLock struct {
	ctx     context.Context
	release func()
	lost    func() bool
}

// lockMigrations waits until this process holds the migration lock and
// returns it. The lock is an insert under a unique _id, which both MongoDB
// and FerretDB decide atomically; its owner field says whose it is, so a
// renewal or a release never touches a lock another runner took after this
// one's expired.
func (s *Store) lockMigrations(ctx context.Context) (*migrationLock, error) {
	lease := cmp.Or(s.migrationLease, DefaultMigrationLease)
	owner := models.NewID()
	poll := min(100*time.Millisecond, lease/4)
	for {
		now := time.Now().UTC()
		lock := bson.D{{Key: "_id", Value: migrationLockID}, {Key: "owner", Value: owner}, {Key: "expires_at", Value: now.Add(lease)}}
		err := s.insert(ctx, collMigrations, lock)
		if err == nil {
			return s.holdMigrationLock(ctx, owner, lease), nil
		}
		if !errors.Is(err, models.ErrConflict) {
			return nil, fmt.Errorf("take migration lock: %w", err)
		}
		var held struct {
			Owner     string    `bson:"owner"`
			ExpiresAt time.Time `bson:"expires_at"`
		}
		err = s.findByID(ctx, collMigrations, migrationLockID, &held)
		if err == nil && now.After(held.ExpiresAt) {
			s.log.WarnContext(ctx, "breaking an expired migration lock", "owner", held.Owner, "expired_at", held.ExpiresAt)
			_, _ = s.coll(collMigrations).DeleteOne(ctx, bson.D{{Key: "_id", Value: migrationLockID}, {Key: "expires_at", Value: held.ExpiresAt}})
			continue
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for migration lock: %w", ctx.Err())
		case <-time.After(poll):
		}
	}
}

// holdMigrationLock renews the lock owner took until release is called. A
// renewal the database does not answer is tried again at the next tick; the
// lock is lost when a renewal finds it gone or someone else's (it expired
// unrenewed and another runner took it).
func (s *Store) holdMigrationLock(parent context.Context, owner string, lease time.Duration) *migrationLock {
	ctx, cancel := context.WithCancelCause(parent)
	var lost atomic.Bool
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(lease / 3)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			renewCtx, cancelRenew := context.WithTimeout(context.WithoutCancel(ctx), lease)
			res, err := s.coll(collMigrations).UpdateOne(renewCtx,
				bson.D{{Key: "_id", Value: migrationLockID}, {Key: "owner", Value: owner}},
				bson.D{{Key: "$set", Value: bson.D{{Key: "expires_at", Value: time.Now().UTC().Add(lease)}}}})
			cancelRenew()
			switch {
			case err == nil && res.MatchedCount == 1:
				s.log.DebugContext(ctx, "migration lock renewed", "owner", owner)
				continue
			case err != nil:
				// The database did not answer in time (busy, or away): the
				// lock may expire meanwhile, but only a renewal that finds
				// it taken says another runner has it.
				s.log.WarnContext(ctx, "migration lock not renewed; trying again", "owner", owner, "err", err.Error())
				continue
			}
			s.log.ErrorContext(ctx, "migration lock lost: it is gone or another runner's", "owner", owner)
			lost.Store(true)
			cancel(errMigrationLockLost)
			return
		}
	}()
	release := func() {
		close(stop)
		<-done
		cancel(nil)
		_, _ = s.coll(collMigrations).DeleteOne(context.WithoutCancel(parent),
			bson.D{{Key: "_id", Value: migrationLockID}, {Key: "owner", Value: owner}})
	}
	return &migrationLock{ctx: ctx, release: release, lost: lost.Load}
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
