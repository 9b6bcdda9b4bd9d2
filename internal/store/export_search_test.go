package store

import (
	"context"

	"github.com/fieldcrm/fieldcrm/internal/store/embedded"
	"github.com/fieldcrm/fieldcrm/models"
)

// ExplainSearch returns the branch a search of a customer's keys takes and
// the plans of its statements (see embedded.Tables.ExplainSearch).
func (s *Store) ExplainSearch(ctx context.Context, coll string, q models.Query) (string, []string, error) {
	return s.tables.(interface {
		ExplainSearch(ctx context.Context, coll string, fields embedded.Fields, q models.Query, index string) (string, []string, error)
	}).ExplainSearch(ctx, coll, queryFields[coll], q, pageIndex(coll, q))
}
