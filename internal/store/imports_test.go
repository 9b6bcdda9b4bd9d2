package store_test

import (
	"context"
	"strings"
	"testing"

	"github.com/fieldcrm/fieldcrm/internal/store"
	"github.com/fieldcrm/fieldcrm/internal/store/embedded"
	"github.com/fieldcrm/fieldcrm/models"
)

// TestSkippedRowsArePagesReadByIndexedID: an import's skipped rows come back
// page by page, none past the last, and each page is a read by _id that the
// embedded SQLite answers from its index.
func TestSkippedRowsArePagesReadByIndexedID(t *testing.T) {
	ctx := context.Background()
	cfg := env.StoreConfig(t)
	st, err := store.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.DropDatabase(ctx); _ = st.Close(ctx) })
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	pages := [][]models.SkippedRow{
		{{Line: 3, Action: "skipped", Reason: "imported before", MatchedID: "c1", MatchedNumber: "C-1"}},
		{{Line: 7, Action: "merged", Reason: "matches C-2 Acme (phone +8613800138000); merged into it", MatchedID: "c2", MatchedNumber: "C-2"},
			{Line: 9, Action: "skipped", Reason: "matches line 7 of the file (email a@b.cn)"}},
	}
	for i, rows := range pages {
		if err := st.AddSkippedRows(ctx, "imp1", i+1, rows); err != nil {
			t.Fatal(err)
		}
	}
	for i, want := range append(pages, nil) {
		got, err := st.SkippedRows(ctx, "imp1", i+1)
		if err != nil || len(got) != len(want) || len(got) > 0 && got[len(got)-1] != want[len(want)-1] {
			t.Fatalf("page %d: %v, %v; want %v", i+1, got, err, want)
		}
	}
	if rows, err := st.SkippedRows(ctx, "imp2", 1); err != nil || len(rows) != 0 {
		t.Fatalf("another import's rows: %v, %v", rows, err)
	}
	if cfg.SQLiteDir == "" {
		return // PostgreSQL backend: FerretDB's own _id index serves lookups there
	}
	plan, err := embedded.ExplainIDLookup(ctx, cfg.SQLiteDir, cfg.Database, "import_skips")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(plan, "USING INDEX") || strings.Contains(plan, "SCAN") {
		t.Fatalf("a page of skipped rows is not read by index; plan:\n%s", plan)
	}
}
