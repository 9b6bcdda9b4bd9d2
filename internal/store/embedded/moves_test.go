package embedded

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fieldcrm/fieldcrm/models"
)

// The side table of moves is filled from the records already there when it
// is built, follows inserts, updates, soft deletes, restores and deletes,
// is left alone when built already, and is built again, from the records,
// when its definition changes (a stage added to the funnel), on SQLite and,
// with FERRETDB_POSTGRESQL_URL set, on PostgreSQL.
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
	before := []string{ // written before the side table: filled when it is built
		doc("a", "u1", "null", "lead", "1000", "prospect", "3000", "lead", "4000"),
		doc("gone", "u1", "5", "lead", "1000"),
		doc("none", "u1", "null"),
	}
	tables, fx := movesFixture(t, before)
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

	fx.insert(doc("b", "u2", "null", "prospect", "2000", "customer", "6000"))
	fx.replace("a", doc("a", "u1", "null", "lead", "1000", "prospect", "3000"))
	fx.replace("gone", doc("gone", "u1", "null", "lead", "1000"))
	fx.replace("none", doc("none", "u1", "7", "lead", "1000"))
	expect("after writes", moves, all,
		models.FunnelCount{Stage: "customer", Entered: 1},
		models.FunnelCount{Stage: "lead", Entered: 2, Advanced: 1, Stays: 1, StayMillis: 2000},
		models.FunnelCount{Stage: "prospect", Entered: 2, Advanced: 1, Stays: 1, StayMillis: 4000})
	expect("u2's", moves, models.Funnel{Query: models.Query{Tenant: "t1", Scope: models.Scope{OwnerIDs: []string{"u2"}}}, From: all.From, To: all.To},
		models.FunnelCount{Stage: "customer", Entered: 1},
		models.FunnelCount{Stage: "prospect", Entered: 1, Advanced: 1, Stays: 1, StayMillis: 4000})
	fx.remove("b")

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
	if n := fx.count(`SELECT count(*) FROM sqlite_master WHERE type = 'trigger'`,
		`SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal AND tgrelid = '`+fx.schema+`.customers_1'::regclass`); n != fx.triggers {
		t.Errorf("%d triggers after the rebuild, want %d", n, fx.triggers)
	}
	if n := fx.count(`SELECT 1`, `SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = '`+fx.schema+`'`); n != 1 {
		t.Errorf("%d trigger functions after the rebuild, want one", n)
	}
}

// movesFixture is a collection "customers" of table customers_1 holding
// docs, under Tables: on SQLite, or on PostgreSQL in a schema of its own
// when FERRETDB_POSTGRESQL_URL is set.
func movesFixture(t *testing.T, docs []string) (*Tables, *fixture) {
	t.Helper()
	fx := &fixture{t: t, triggers: 3}
	var tables *Tables
	var err error
	if url := os.Getenv("FERRETDB_POSTGRESQL_URL"); url != "" {
		fx.schema = fmt.Sprintf("moves_test_%d", time.Now().UnixNano())
		fx.conn, err = sql.Open("pgx", url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_, _ = fx.conn.ExecContext(context.Background(), "DROP SCHEMA "+fx.schema+" CASCADE")
			fx.conn.Close()
		})
		fx.triggers = 2
		fx.exec(`CREATE SCHEMA ` + fx.schema)
		fx.exec(`CREATE TABLE ` + fx.schema + `._ferretdb_database_metadata (_jsonb jsonb)`)
		fx.exec(`INSERT INTO ` + fx.schema + `._ferretdb_database_metadata VALUES ('{"_id": "customers", "table": "customers_1"}')`)
		fx.exec(`CREATE TABLE ` + fx.schema + `.customers_1 (_jsonb jsonb)`)
		tables, err = OpenTables("", "", url, fx.schema)
	} else {
		var dir string
		dir, fx.conn = sqliteFixture(t,
			`CREATE TABLE _ferretdb_collections (name TEXT, table_name TEXT)`,
			`INSERT INTO _ferretdb_collections VALUES ('customers', 'customers_1')`,
			`CREATE TABLE customers_1 (_ferretdb_sjson TEXT NOT NULL)`)
		tables, err = OpenTables(dir, "", "", "db")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tables.Close() })
	for _, d := range docs {
		fx.insert(d)
	}
	return tables, fx
}

// fixture writes the documents of movesFixture's table as FerretDB would.
type fixture struct {
	t        *testing.T
	conn     *sql.DB
	schema   string // PostgreSQL's; "" on SQLite
	triggers int    // how many triggers the side table has
}

func (fx *fixture) exec(stmt string, args ...any) {
	fx.t.Helper()
	if _, err := fx.conn.ExecContext(context.Background(), stmt, args...); err != nil {
		fx.t.Fatalf("%s: %v", stmt, err)
	}
}

func (fx *fixture) insert(doc string) {
	fx.t.Helper()
	if fx.schema != "" {
		fx.exec(`INSERT INTO `+fx.schema+`.customers_1 VALUES ($1::jsonb)`, doc)
		return
	}
	fx.exec(`INSERT INTO customers_1 VALUES (?)`, doc)
}

func (fx *fixture) replace(id, doc string) {
	fx.t.Helper()
	if fx.schema != "" {
		fx.exec(`UPDATE `+fx.schema+`.customers_1 SET _jsonb = $1::jsonb WHERE _jsonb->>'_id' = $2`, doc, id)
		return
	}
	fx.exec(`UPDATE customers_1 SET _ferretdb_sjson = ? WHERE _ferretdb_sjson->>'$._id' = ?`, doc, id)
}

func (fx *fixture) remove(id string) {
	fx.t.Helper()
	if fx.schema != "" {
		fx.exec(`DELETE FROM `+fx.schema+`.customers_1 WHERE _jsonb->>'_id' = $1`, id)
		return
	}
	fx.exec(`DELETE FROM customers_1 WHERE _ferretdb_sjson->>'$._id' = ?`, id)
}

// count runs the query of the engine and returns its number.
func (fx *fixture) count(sqlite, postgres string) int {
	fx.t.Helper()
	q := sqlite
	if fx.schema != "" {
		q = postgres
	}
	var n int
	if err := fx.conn.QueryRowContext(context.Background(), q).Scan(&n); err != nil {
		fx.t.Fatal(err)
	}
	return n
}
