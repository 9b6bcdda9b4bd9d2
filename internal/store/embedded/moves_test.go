package embedded

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fieldcrm/fieldcrm/models"
)

// The side table of moves is filled from the records already there when it
// is built, follows inserts, updates, soft deletes, restores and deletes,
// is left alone when built already, and is built again, from the records,
// when its definition changes (a stage added to the funnel).
func TestMovesAreFilledKeptAndRebuilt(t *testing.T) {
	ctx := context.Background()
	doc := func(id, owner, deleted string, moves ...string) string {
		var items []string
		for i := 0; i < len(moves); i += 2 {
			items = append(items, `{"$s":{},"to":"`+moves[i]+`","at":`+moves[i+1]+`}`)
		}
		history := "null"
		if items != nil {
			history = "[" + strings.Join(items, ",") + "]"
		}
		return `{"_id":"` + id + `","tenant_id":"t1","owner_id":"` + owner + `","team_id":"team","deleted_at":` + deleted + `,"stage_history":` + history + `}`
	}
	dir, conn := sqliteFixture(t,
		`CREATE TABLE _ferretdb_collections (name TEXT, table_name TEXT)`,
		`INSERT INTO _ferretdb_collections VALUES ('customers', 'customers_1')`,
		`CREATE TABLE customers_1 (_ferretdb_sjson TEXT NOT NULL)`,
		// Before the side table: filled when it is built.
		`INSERT INTO customers_1 VALUES ('`+doc("a", "u1", "null", "lead", "1000", "prospect", "3000", "lead", "4000")+`')`,
		`INSERT INTO customers_1 VALUES ('`+doc("gone", "u1", "5", "lead", "1000")+`')`,
		`INSERT INTO customers_1 VALUES ('`+doc("none", "u1", "null")+`')`,
	)
	tables, err := OpenTables(dir, "", "", "db")
	if err != nil {
		t.Fatal(err)
	}
	defer tables.Close()
	moves := Moves{Coll: "customers", Array: "stage_history", To: "to", At: "at", Order: []string{"lead", "prospect", "customer"}}
	all := models.Funnel{Query: models.Query{Tenant: "t1", Scope: models.Scope{All: true}}, From: time.UnixMilli(0), To: time.UnixMilli(10000)}
	expect := func(when string, m Moves, f models.Funnel, want ...models.FunnelCount) {
		t.Helper()
		got, err := tables.Funnel(ctx, m, f)
		if err != nil {
			t.Fatal(err)
		}
		slices.SortFunc(got, func(a, b models.FunnelCount) int { return strings.Compare(a.Stage, b.Stage) })
		if !slices.Equal(got, want) {
			t.Errorf("%s:\n got %+v\nwant %+v", when, got, want)
		}
	}
	write := func(stmt string, args ...any) {
		t.Helper()
		if _, err := conn.ExecContext(ctx, stmt, args...); err != nil {
			t.Fatal(err)
		}
	}
	if built, err := tables.IndexMoves(ctx, moves); err != nil || !built {
		t.Fatalf("first build: %v, %v", built, err)
	}
	// a: lead at 1000 (advanced at 3000), prospect 3000–4000, lead again at 4000.
	expect("filled", moves, all,
		models.FunnelCount{Stage: "lead", Entered: 2, Advanced: 1, Stays: 1, StayMillis: 2000},
		models.FunnelCount{Stage: "prospect", Entered: 1, Stays: 1, StayMillis: 1000})
	expect("a period from 3500", moves, models.Funnel{Query: all.Query, From: time.UnixMilli(3500), To: time.UnixMilli(10000)},
		models.FunnelCount{Stage: "lead", Entered: 1},
		models.FunnelCount{Stage: "prospect", Stays: 1, StayMillis: 1000})
	expect("another owner's", moves, models.Funnel{Query: models.Query{Tenant: "t1", Scope: models.Scope{OwnerIDs: []string{"u2"}}}, From: all.From, To: all.To})

	write(`INSERT INTO customers_1 VALUES (?)`, doc("b", "u2", "null", "prospect", "2000", "customer", "6000"))
	write(`UPDATE customers_1 SET _ferretdb_sjson = ? WHERE _ferretdb_sjson->>'$._id' = 'a'`, doc("a", "u1", "null", "lead", "1000", "prospect", "3000"))
	write(`UPDATE customers_1 SET _ferretdb_sjson = ? WHERE _ferretdb_sjson->>'$._id' = 'gone'`, doc("gone", "u1", "null", "lead", "1000"))
	write(`UPDATE customers_1 SET _ferretdb_sjson = ? WHERE _ferretdb_sjson->>'$._id' = 'none'`, doc("none", "u1", "7", "lead", "1000"))
	expect("after writes", moves, all,
		models.FunnelCount{Stage: "customer", Entered: 1},
		models.FunnelCount{Stage: "lead", Entered: 2, Advanced: 1, Stays: 1, StayMillis: 2000},
		models.FunnelCount{Stage: "prospect", Entered: 2, Advanced: 1, Stays: 1, StayMillis: 4000})
	expect("u2's", moves, models.Funnel{Query: models.Query{Tenant: "t1", Scope: models.Scope{OwnerIDs: []string{"u2"}}}, From: all.From, To: all.To},
		models.FunnelCount{Stage: "customer", Entered: 1},
		models.FunnelCount{Stage: "prospect", Entered: 1, Advanced: 1, Stays: 1, StayMillis: 4000})
	write(`DELETE FROM customers_1 WHERE _ferretdb_sjson->>'$._id' = 'b'`)

	if built, err := tables.IndexMoves(ctx, moves); err != nil || built {
		t.Fatalf("a second build: %v, %v; want none", built, err)
	}
	wider := moves
	wider.Order = []string{"lead", "opportunity", "prospect"}
	if built, err := tables.IndexMoves(ctx, wider); err != nil || !built {
		t.Fatalf("a changed definition: built %v, %v", built, err)
	}
	expect("rebuilt", wider, all,
		models.FunnelCount{Stage: "lead", Entered: 2, Advanced: 1, Stays: 1, StayMillis: 2000},
		models.FunnelCount{Stage: "prospect", Entered: 1})
	var triggers int
	if err := conn.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'trigger'`).Scan(&triggers); err != nil || triggers != 3 {
		t.Errorf("%d triggers after the rebuild (%v), want 3", triggers, err)
	}
}
