package embedded

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
)

// An index made by an earlier version (not unique) is replaced by a unique
// one; a table without one gets it; a second run changes nothing; replicas
// starting together both succeed.
func TestIDLookupIndexesBecomeUnique(t *testing.T) {
	ctx := context.Background()
	dir, conn := sqliteFixture(t,
		`CREATE TABLE _ferretdb_collections (name TEXT, table_name TEXT)`,
		`INSERT INTO _ferretdb_collections VALUES ('old', 'old_1'), ('fresh', 'fresh_2')`,
		`CREATE TABLE old_1 (_ferretdb_sjson TEXT NOT NULL)`,
		`CREATE TABLE fresh_2 (_ferretdb_sjson TEXT NOT NULL)`,
		`INSERT INTO old_1 VALUES ('{"_id":"a"}'), ('{"_id":"b"}')`,
		`CREATE INDEX old_1`+oldIDIndexSuffix+` ON old_1 (`+idExpression+`)`,
	)
	created, err := IndexIDLookups(ctx, dir, "db")
	if err != nil || created != 2 {
		t.Fatalf("first run: created %d, %v; want 2", created, err)
	}
	for _, table := range []string{"old_1", "fresh_2"} {
		var text string
		if err := conn.QueryRowContext(ctx, `SELECT sql FROM sqlite_master WHERE name = ?`, table+idIndexSuffix).Scan(&text); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(text, "CREATE UNIQUE INDEX") {
			t.Fatalf("index of %s: %s", table, text)
		}
	}
	var old int
	if err := conn.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE name = ?`, "old_1"+oldIDIndexSuffix).Scan(&old); err != nil || old != 0 {
		t.Fatalf("the old index is still there (%d, %v)", old, err)
	}
	if created, err := IndexIDLookups(ctx, dir, "db"); err != nil || created != 0 {
		t.Fatalf("second run: created %d, %v; want 0", created, err)
	}
	if _, err := conn.ExecContext(ctx, `CREATE TABLE new_3 (_ferretdb_sjson TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, `INSERT INTO _ferretdb_collections VALUES ('new', 'new_3')`); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 4)
	for range cap(errs) {
		go func() { _, err := IndexIDLookups(ctx, dir, "db"); errs <- err }()
	}
	for range cap(errs) {
		if err := <-errs; err != nil {
			t.Fatalf("replicas starting together: %v", err)
		}
	}
	if _, err := conn.ExecContext(ctx, `INSERT INTO old_1 VALUES ('{"_id":"a","again":true}')`); !isDuplicate(err) {
		t.Fatalf("a second document with _id a: %v", err)
	}
}

// A query index no longer listed (one a wider index replaced) is dropped at
// start-up; the listed ones are made, and other indexes stay.
func TestRetiredQueryIndexesAreDropped(t *testing.T) {
	ctx := context.Background()
	dir, conn := sqliteFixture(t,
		`CREATE TABLE _ferretdb_collections (name TEXT, table_name TEXT)`,
		`INSERT INTO _ferretdb_collections VALUES ('visits', 'visits_1')`,
		`CREATE TABLE visits_1 (_ferretdb_sjson TEXT NOT NULL)`,
		`CREATE INDEX visits_1_fieldcrm_q_occurred ON visits_1 ((_ferretdb_sjson->>'$.occurred_at'))`,
		`CREATE INDEX visits_1_fieldcrm_customer_id ON visits_1 ((_ferretdb_sjson->>'$.customer_id'))`,
	)
	tables, err := OpenTables(dir, "", "", "db")
	if err != nil {
		t.Fatal(err)
	}
	defer tables.Close()
	fields := map[string]Fields{"visits": {"occurred_at": Time, "deleted_at": Time}}
	indexes := map[string][]Index{"visits": {{Name: "span_occurred", Fields: []string{"tenant_id", "occurred_at", "_id", "deleted_at"}}}}
	if _, err := tables.IndexQueries(ctx, indexes, fields); err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	rows, err := conn.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'visits_1'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		names[name] = true
	}
	rows.Close()
	if names["visits_1_fieldcrm_q_occurred"] || !names["visits_1_fieldcrm_q_span_occurred"] || !names["visits_1_fieldcrm_customer_id"] {
		t.Fatalf("indexes after start-up: %v; want span_occurred and customer_id, not occurred", names)
	}
}

// A refresh of the planner's statistics changes the schema, so that every
// reading connection, which loaded the statistics with the schema when it
// opened, loads the new ones before its next statement.
func TestStatisticsRefreshReachesTheReaders(t *testing.T) {
	ctx := context.Background()
	dir, conn := sqliteFixture(t, `CREATE TABLE _ferretdb_collections (name TEXT, table_name TEXT)`)
	tables, err := OpenTables(dir, "", "", "db")
	if err != nil {
		t.Fatal(err)
	}
	defer tables.Close()
	version := func() int {
		var v int
		if err := tables.db.QueryRowContext(ctx, "PRAGMA schema_version").Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	// The first refresh creates the statistics tables, a change of the
	// schema of its own; the second is the one to watch.
	if err := tables.Analyze(ctx); err != nil {
		t.Fatal(err)
	}
	before := version()
	if err := tables.Analyze(ctx); err != nil {
		t.Fatal(err)
	}
	if after := version(); after == before {
		t.Fatalf("schema version %d before and after the refresh: readers keep their statistics", before)
	}
	var left int
	if err := conn.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE name = 'fieldcrm_statistics_refreshed'`).Scan(&left); err != nil || left != 0 {
		t.Fatalf("the marker table is left behind (%d, %v)", left, err)
	}
}

// sqliteFixture makes a SQLite database (db.sqlite in a directory of its
// own) with stmts run on it, as FerretDB would have left it.
func sqliteFixture(t *testing.T, stmts ...string) (string, *sql.DB) {
	t.Helper()
	dir := t.TempDir()
	conn, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "db.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	for _, stmt := range stmts {
		if _, err := conn.ExecContext(context.Background(), stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	return dir, conn
}

// A query index made by an earlier version without deleted_at after the id
// is made again with it; a second start-up changes nothing.
func TestQueryIndexesOfAnEarlierVersionAreMadeAgain(t *testing.T) {
	ctx := context.Background()
	dir, conn := sqliteFixture(t,
		`CREATE TABLE _ferretdb_collections (name TEXT, table_name TEXT)`,
		`INSERT INTO _ferretdb_collections VALUES ('visits', 'visits_1')`,
		`CREATE TABLE visits_1 (_ferretdb_sjson TEXT NOT NULL)`,
		`CREATE INDEX visits_1_fieldcrm_q_owner ON visits_1 ((_ferretdb_sjson->>'$.tenant_id'), (_ferretdb_sjson->>'$.owner_id'), (_ferretdb_sjson->>'$._id'))`,
	)
	tables, err := OpenTables(dir, "", "", "db")
	if err != nil {
		t.Fatal(err)
	}
	defer tables.Close()
	fields := map[string]Fields{"visits": {"owner_id": Text, "deleted_at": Time}}
	indexes := map[string][]Index{"visits": {{Name: "owner", Fields: []string{"tenant_id", "owner_id", "_id"}}}}
	columns := func() int {
		var n int
		if err := conn.QueryRowContext(ctx, `SELECT count(*) FROM pragma_index_info('visits_1_fieldcrm_q_owner')`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if created, err := tables.IndexQueries(ctx, indexes, fields); err != nil || created != 1 || columns() != 4 {
		t.Fatalf("first start-up: created %d (%v), the index has %d columns; want 1 made again with 4", created, err, columns())
	}
	if created, err := tables.IndexQueries(ctx, indexes, fields); err != nil || created != 0 || columns() != 4 {
		t.Fatalf("second start-up: created %d (%v), the index has %d columns; want none made, 4 columns", created, err, columns())
	}
}
