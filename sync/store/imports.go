package store

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/fieldcrm/fieldcrm/models"
)

// Collections of spreadsheet imports.
const (
	collImports        = "imports"
	collImportFailures = "import_failures"
)

// createImportCollections is migration 6: import jobs and their failed rows.
func createImportCollections(ctx context.Context, s *Store) error {
	if err := s.ensureIndexes(ctx, collImports, index{"tenant_started", asc("tenant_id", "started_at"), false}); err != nil {
		return err
	}
	return s.ensureIndexes(ctx, collImportFailures, index{"import", asc("import_id", "_id"), false})
}

// SaveImport stores an import's record, replacing the earlier one.
func (s *Store) SaveImport(ctx context.Context, im models.Import) error {
	if err := s.put(ctx, collImports, im.ID, im); err != nil {
		return fmt.Errorf("save import %s: %w", im.ID, err)
	}
	return nil
}

// Import returns an import of the tenant, or models.ErrNotFound.
func (s *Store) Import(ctx context.Context, tenant, id string) (models.Import, error) {
	var im models.Import
	err := s.findByID(ctx, collImports, id, &im)
	if errors.Is(err, models.ErrNotFound) || (err == nil && im.TenantID != tenant) {
		return models.Import{}, models.ErrNotFound
	}
	if err != nil {
		return models.Import{}, fmt.Errorf("load import %s: %w", id, err)
	}
	return im, nil
}

// AddImportFailures stores failed rows of an import; all failures of one
// line come in one call.
func (s *Store) AddImportFailures(ctx context.Context, importID string, failures []models.ImportFailure) error {
	docs := make([]any, len(failures))
	n := 0
	for i := range failures {
		if i > 0 && failures[i].Line == failures[i-1].Line {
			n++
		} else {
			n = 0
		}
		failures[i].ImportID = importID
		failures[i].ID = fmt.Sprintf("%s/%010d/%03d", importID, failures[i].Line, n)
		docs[i] = failures[i]
	}
	if _, err := s.coll(collImportFailures).InsertMany(ctx, docs); err != nil {
		return fmt.Errorf("store %d failed rows of import %s: %w", len(failures), importID, err)
	}
	return nil
}

// ImportFailures returns up to limit failures of an import in line order,
// after the failure with id after ("" for the first page).
func (s *Store) ImportFailures(ctx context.Context, importID, after string, limit int) ([]models.ImportFailure, error) {
	filter := bson.D{{Key: "import_id", Value: importID}, {Key: "_id", Value: bson.D{{Key: "$gt", Value: after}}}}
	opts := options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(int64(limit))
	out := []models.ImportFailure{}
	if err := s.findAll(ctx, collImportFailures, filter, opts, &out); err != nil {
		return nil, fmt.Errorf("failed rows of import %s: %w", importID, err)
	}
	return out, nil
}
