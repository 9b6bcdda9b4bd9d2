package embedded

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fieldcrm/fieldcrm/models"
)

// The side table of tallies (PostgreSQL) is filled from the records
// already there when it is built, follows inserts, updates, soft deletes,
// restores and deletes, is left alone when built already, and is built
// again, from the records, when its definition changes or it was dropped;
// at every step its tallies equal those read from the documents.
func TestTalliesAreFilledKeptAndRebuilt(t *testing.T) {
	if os.Getenv("FERRETDB_POSTGRESQL_URL") == "" {
		t.Skip("the side table of tallies is PostgreSQL's (set FERRETDB_POSTGRESQL_URL)")
	}
	ctx := context.Background()
	doc := func(id, owner, deleted, stage, owed string, created int64) string {
		return fmt.Sprintf(`{"_id":"%s","tenant_id":"t1","owner_id":"%s","team_id":"team","deleted_at":%s,"stage":%s,"credit":{"outstanding":%s},"created_at":%d}`,
			id, owner, deleted, stage, owed, created)
	}
	tables, fx := movesFixture(t, []string{
		doc("a", "u1", "null", `"lead"`, "100", 1000),
		doc("b", "u2", "null", `"lead"`, "5", 2000),
		doc("gone", "u1", "3", `"customer"`, "7", 3000),
		doc("odd", "u2", "null", `null`, `null`, 4000),
		`{"_id":"untenanted","stage":"lead"}`,
	})
	fields := Fields{"deleted_at": Time, "owner_id": Text, "team_id": Text, "stage": Text, "credit.outstanding": Number, "created_at": Time}
	base := Index{Name: "tally_base", Fields: []string{"tenant_id", "deleted_at", "owner_id", "team_id", "stage", "credit.outstanding"}}
	created := Index{Name: "tally_created", Fields: []string{"tenant_id", "deleted_at", "created_at", "owner_id", "team_id"}}
	all := models.Query{Tenant: "t1", Scope: models.Scope{All: true}}
	tallies := []struct {
		index string
		t     models.Tally
	}{
		{"tally_base", models.Tally{Query: all, By: []string{"stage"}, Sum: []string{"credit.outstanding"}}},
		{"tally_base", models.Tally{Query: models.Query{Tenant: "t1", Scope: models.Scope{OwnerIDs: []string{"u1"}}}, By: []string{"owner_id", "credit.outstanding"}}},
		{"tally_base", models.Tally{Query: models.Query{Tenant: "t1", Scope: models.Scope{All: true}, WithDeleted: true}, By: []string{"stage"}}},
		{"tally_created", models.Tally{Query: models.Query{Tenant: "t1", Scope: models.Scope{TeamIDs: []string{"team"}}, Conds: []models.Cond{
			{Field: "created_at", Op: models.OpGte, Value: time.UnixMilli(1500)}, {Field: "created_at", Op: models.OpLt, Value: time.UnixMilli(9000)}}},
			By: []string{"created_at"}, Days: []string{"created_at"}}},
	}
	// check compares every tally read from the side table with the same
	// read from the documents, and returns the first's groups.
	check := func(when string) []string {
		t.Helper()
		var first []string
		for i, tc := range tallies {
			side, err := tables.Tally(ctx, "customers", fields, tc.t, tc.index)
			if err != nil {
				t.Fatalf("%s: %v", when, err)
			}
			docs, err := tables.Tally(ctx, "customers", fields, tc.t, "")
			if err != nil {
				t.Fatalf("%s: %v", when, err)
			}
			if got, want := printGroups(side), printGroups(docs); !slices.Equal(got, want) {
				t.Errorf("%s, tally %d:\n side table %v\n documents  %v", when, i, got, want)
			}
			if i == 0 {
				first = printGroups(side)
			}
		}
		return first
	}
	expect := func(when string, want ...string) {
		t.Helper()
		if got := check(when); !slices.Equal(got, want) {
			t.Errorf("%s:\n got %v\nwant %v", when, got, want)
		}
	}
	indexes := []Index{base, created}
	if built, err := tables.IndexTallies(ctx, "customers", indexes, fields); err != nil || !built {
		t.Fatalf("first build: %v, %v", built, err)
	}
	expect("filled", `[<nil>] 1 [0]`, `[lead] 2 [105]`)

	fx.insert(doc("c", "u1", "null", `"customer"`, "20", 5000))
	fx.replace("a", doc("a", "u1", "null", `"customer"`, "100", 1000))
	fx.replace("gone", doc("gone", "u1", "null", `"customer"`, "7", 3000)) // restored
	fx.replace("b", doc("b", "u2", "6", `"lead"`, "5", 2000))              // soft-deleted
	fx.remove("odd")
	expect("after writes", `[customer] 3 [127]`)
	fx.exec(`UPDATE ` + fx.schema + `.customers_1 SET _jsonb = jsonb_set(_jsonb, '{credit,outstanding}', '1') WHERE _jsonb->>'_id' = 'c'`)
	fx.exec(`UPDATE ` + fx.schema + `.customers_1 SET _jsonb = jsonb_set(_jsonb, '{note}', '"untallied"') WHERE _jsonb->>'_id' = 'a'`)
	expect("after a nested field's change", `[customer] 3 [108]`)

	if built, err := tables.IndexTallies(ctx, "customers", indexes, fields); err != nil || built {
		t.Fatalf("a second build: %v, %v; want none", built, err)
	}
	fields["region"] = Text
	wider := Index{Name: "tally_base", Fields: append(slices.Clone(base.Fields), "region")}
	if built, err := tables.IndexTallies(ctx, "customers", []Index{wider, created}, fields); err != nil || !built {
		t.Fatalf("a changed definition: built %v, %v", built, err)
	}
	expect("rebuilt", `[customer] 3 [108]`)
	fx.exec(`DROP TABLE ` + fx.schema + `.customers_1` + tallySuffix)
	if built, err := tables.IndexTallies(ctx, "customers", []Index{wider, created}, fields); err != nil || !built {
		t.Fatalf("a dropped table: built %v, %v", built, err)
	}
	fx.insert(doc("d", "u2", "null", `"lead"`, "2", 6000))
	expect("rebuilt after a drop", `[customer] 3 [108]`, `[lead] 1 [2]`)
	if n := fx.count(`SELECT 1`, `SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal AND tgrelid = '`+fx.schema+`.customers_1'::regclass`); n != 2 {
		t.Errorf("%d triggers after the rebuilds, want 2", n)
	}
	if n := fx.count(`SELECT 1`, `SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = '`+fx.schema+`'`); n != 1 {
		t.Errorf("%d trigger functions after the rebuilds, want one", n)
	}
}

// printGroups prints groups sorted, one string each.
func printGroups(groups []models.TallyGroup) []string {
	var out []string
	for _, g := range groups {
		out = append(out, fmt.Sprintf("%v %d %v", g.Values, g.Count, g.Sums))
	}
	slices.SortFunc(out, strings.Compare)
	return out
}
