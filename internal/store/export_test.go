package store

import (
	"context"

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

// ExplainEqual returns the database's plan for a direct lookup.
func (s *Store) ExplainEqual(ctx context.Context, coll, field string) (string, error) {
	return s.tables.(interface {
		ExplainEqual(ctx context.Context, coll, field string) (string, error)
	}).ExplainEqual(ctx, coll, field)
}
