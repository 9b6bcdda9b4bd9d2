package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/fieldcrm/fieldcrm/models"
)

// Collections of spreadsheet imports.
const (
	collImports        = "imports"
	collImportFailures = "import_failures"
	collImportSkips    = "import_skips"
)

// createImportCollections is migration 6: import jobs and their failed rows.
func createImportCollections(ctx context.Context, s *Store) error {
	if err := s.ensureIndexes(ctx, collImports, index{"tenant_started", asc("tenant_id", "started_at"), false}); err != nil {
		return err
	}
	return s.ensureIndexes(ctx, collImportFailures, index{"import", asc("import_id", "_id"), false})
}

// indexImportsByState is migration 9: the start-up sweep finds the imports
// still running, across tenants.
func indexImportsByState(ctx context.Context, s *Store) error {
	return s.ensureIndexes(ctx, collImports, index{"state_updated", asc("state", "updated_at"), false})
}

// createImportSkips is migration 10: the rows of imports skipped or merged as
// duplicates, in pages read by _id alone (see AddSkippedRows).
func createImportSkips(ctx context.Context, s *Store) error {
	return s.ensureCollection(ctx, collImportSkips)
}

// skippedPage is one page of an import's skipped rows: the rows one flush of
// the import's progress brought, in line order.
type skippedPage struct {
	ID       string              `bson:"_id"`
	ImportID string              `bson:"import_id"`
	Rows     []models.SkippedRow `bson:"rows"`
}

func skippedPageID(importID string, page int) string { return fmt.Sprintf("%s/%06d", importID, page) }

// AddSkippedRows stores page number page (1, 2, …) of an import's skipped
// rows. Pages are numbered rather than queried by import, so that reading
// them is a read by _id on every engine, whatever the number of imports.
func (s *Store) AddSkippedRows(ctx context.Context, importID string, page int, rows []models.SkippedRow) error {
	doc := skippedPage{ID: skippedPageID(importID, page), ImportID: importID, Rows: rows}
	if err := s.put(ctx, collImportSkips, doc.ID, doc); err != nil {
		return fmt.Errorf("store %d skipped rows of import %s: %w", len(rows), importID, err)
	}
	return nil
}

// SkippedRows returns page number page of an import's skipped rows; none
// past the last page.
func (s *Store) SkippedRows(ctx context.Context, importID string, page int) ([]models.SkippedRow, error) {
	var doc skippedPage
	err := s.findByID(ctx, collImportSkips, skippedPageID(importID, page), &doc)
	if errors.Is(err, models.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("skipped rows of import %s: %w", importID, err)
	}
	return doc.Rows, nil
}

// RunningImports lists the imports of every tenant whose state is running.
func (s *Store) RunningImports(ctx context.Context) ([]models.Import, error) {
	out := []models.Import{}
	if err := s.findAll(ctx, collImports, bson.D{{Key: "state", Value: models.ImportRunning}}, options.Find(), &out); err != nil {
		return nil, fmt.Errorf("list running imports: %w", err)
	}
	return out, nil
}

// InterruptImport marks an import interrupted with reason at at, only while
// it is still running under runner and, when updatedAt is not zero, has not
// saved progress since updatedAt: a run that is alive after all keeps its
// state. It reports whether it marked the import.
func (s *Store) InterruptImport(ctx context.Context, id, runner string, updatedAt time.Time, reason string, at time.Time) (bool, error) {
	filter := bson.D{{Key: "_id", Value: id}, {Key: "state", Value: models.ImportRunning}, {Key: "runner", Value: runner}}
	if !updatedAt.IsZero() {
		filter = append(filter, bson.E{Key: "updated_at", Value: updatedAt})
	}
	update := bson.D{{Key: "$set", Value: bson.D{{Key: "state", Value: models.ImportInterrupted}, {Key: "error", Value: reason},
		{Key: "updated_at", Value: at}, {Key: "finished_at", Value: at}, {Key: "rows_per_second", Value: 0}, {Key: "eta_seconds", Value: 0}}}}
	res, err := s.coll(collImports).UpdateOne(ctx, filter, update)
	if err != nil {
		return false, fmt.Errorf("mark import %s interrupted: %w", id, err)
	}
	return res.ModifiedCount == 1, nil
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
