package store

import (
	"context"
	"errors"
	"time"

	"go.mongodb.org/mongo-driver/bson"

	"github.com/fieldcrm/fieldcrm/internal/store/embedded"
	"github.com/fieldcrm/fieldcrm/models"
)

// InsertAuditForTest inserts the claim of meta's version alone, as a writer
// that crashed before writing the record would have left it.
func (s *Store) InsertAuditForTest(ctx context.Context, coll string, meta *models.Meta) error {
	e := models.AuditEntry{Action: "crashed"}
	fillEntry(&e, coll, meta)
	return s.insert(ctx, collAudit, e)
}

// ExplainChanges returns the database's plan for a direct changes read.
func (s *Store) ExplainChanges(ctx context.Context, coll string) (string, error) {
	return s.tables.(interface {
		ExplainChanges(ctx context.Context, coll string) (string, error)
	}).ExplainChanges(ctx, coll)
}

// ExplainHighestCustomerNumber returns the database's plan for
// HighestCustomerNumber on the embedded engines.
func (s *Store) ExplainHighestCustomerNumber(ctx context.Context) (string, error) {
	return s.tables.(interface {
		ExplainHighestSeq(ctx context.Context, coll string) (string, error)
	}).ExplainHighestSeq(ctx, collCustomerNumbers)
}

// ExplainFind returns the database's plan for a query answered from the
// tables, or an error when the query does not translate.
func (s *Store) ExplainFind(ctx context.Context, coll string, q models.Query) (string, error) {
	return s.tables.(interface {
		ExplainFind(ctx context.Context, coll string, fields embedded.Fields, q models.Query, hints embedded.Hints) (string, error)
	}).ExplainFind(ctx, coll, queryFields[coll], q, hintsFor(coll, q))
}

// ExplainFindCount returns SQLite's plan for a count of what q selects (see
// embedded.Tables.ExplainFindCount).
func (s *Store) ExplainFindCount(ctx context.Context, coll string, q models.Query) (string, error) {
	return s.tables.(interface {
		ExplainFindCount(ctx context.Context, coll string, fields embedded.Fields, q models.Query) (string, error)
	}).ExplainFindCount(ctx, coll, queryFields[coll], q)
}

// ReadsTables says whether the store answers queries from the embedded
// engine's tables (false on the driver path).
func (s *Store) ReadsTables() bool { return s.tables != nil }

// KeepsDocumentsInline reports whether the engine keeps coll's documents in
// its table's pages (PostgreSQL; always true on SQLite).
func (s *Store) KeepsDocumentsInline(ctx context.Context, coll string) (bool, error) {
	return s.tables.(interface {
		KeepsDocumentsInline(ctx context.Context, coll string) (bool, error)
	}).KeepsDocumentsInline(ctx, coll)
}

// IndexNames lists the names of coll's indexes on MongoDB.
func (s *Store) IndexNames(ctx context.Context, coll string) ([]string, error) {
	cur, err := s.coll(coll).Indexes().List(ctx)
	if err != nil {
		return nil, err
	}
	var specs []struct {
		Name string `bson:"name"`
	}
	if err := cur.All(ctx, &specs); err != nil {
		return nil, err
	}
	names := make([]string, len(specs))
	for i, spec := range specs {
		names[i] = spec.Name
	}
	return names, nil
}

// CreateIndex creates an index on MongoDB, as an earlier version's
// migration did.
func (s *Store) CreateIndex(ctx context.Context, coll, name string, fields ...string) error {
	return s.ensureIndexes(ctx, coll, index{name: name, keys: asc(fields...)})
}

// DropSpannedIndexes is migration 14's second step.
func DropSpannedIndexes(ctx context.Context, s *Store) error { return dropSpannedIndexes(ctx, s) }

// ExplainSearchWalk returns the database's plan for the first step of a
// substring search on SQLite (see embedded.Tables.Find).
func (s *Store) ExplainSearchWalk(ctx context.Context, coll string, q models.Query) (string, error) {
	return s.tables.(interface {
		ExplainWalk(ctx context.Context, coll string, fields embedded.Fields, q models.Query, index string) (string, error)
	}).ExplainWalk(ctx, coll, queryFields[coll], q, pageIndex(coll, q))
}

// KeyHolders returns the customers the key document of tenant's key lists,
// nil when there is none.
func (s *Store) KeyHolders(ctx context.Context, tenant, key string) ([]string, error) {
	var doc customerKeyDoc
	err := s.findByID(ctx, collCustomerKeys, customerKeyID(tenant, key), &doc)
	if errors.Is(err, models.ErrNotFound) {
		return nil, nil
	}
	return doc.CustomerIDs, err
}

// ExplainChangesSeen returns the database's plan for ChangesSeen, and that
// of a count of what it selects (see embedded.Tables.ExplainChangesSeen).
func (s *Store) ExplainChangesSeen(ctx context.Context, coll string, sc models.Scope, orAssignee string, live bool) (plan, count string, err error) {
	return s.tables.(interface {
		ExplainChangesSeen(ctx context.Context, coll string, fields embedded.Fields, sc models.Scope, orAssignee string, live bool) (string, string, error)
	}).ExplainChangesSeen(ctx, coll, queryFields[coll], sc, orAssignee, live)
}

// RawDocument returns the stored document of coll with _id id, as the
// database keeps it.
func (s *Store) RawDocument(ctx context.Context, coll, id string) (bson.Raw, error) {
	return s.coll(coll).FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Raw()
}

// MigrationLockForTest reads the migration lock: its holder and expiry, or
// models.ErrNotFound when nobody holds it.
func (s *Store) MigrationLockForTest(ctx context.Context) (owner string, expiresAt time.Time, err error) {
	var held struct {
		Owner     string    `bson:"owner"`
		ExpiresAt time.Time `bson:"expires_at"`
	}
	if err := s.findByID(ctx, collMigrations, migrationLockID, &held); err != nil {
		return "", time.Time{}, err
	}
	return held.Owner, held.ExpiresAt, nil
}

// BreakMigrationLockForTest deletes the migration lock, as a runner that
// found it expired would.
func (s *Store) BreakMigrationLockForTest(ctx context.Context) error {
	_, err := s.coll(collMigrations).DeleteOne(ctx, bson.D{{Key: "_id", Value: migrationLockID}})
	return err
}
