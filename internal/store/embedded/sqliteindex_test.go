package embedded

import (
	"context"
	"database/sql"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// An index made by an earlier version (not unique) is replaced by a unique
// one, and so is FerretDB's own; a table without one gets it; a second run
// changes nothing; replicas starting together both succeed; _id stays
// unique.
func TestIDLookupIndexesBecomeUnique(t *testing.T) {
	ctx := context.Background()
	dir, conn := sqliteFixture(t,
		`CREATE TABLE _ferretdb_collections (name TEXT, table_name TEXT)`,
		`INSERT INTO _ferretdb_collections VALUES ('old', 'old_1'), ('fresh', 'fresh_2')`,
		`CREATE TABLE old_1 (_ferretdb_sjson TEXT NOT NULL)`,
		`CREATE TABLE fresh_2 (_ferretdb_sjson TEXT NOT NULL)`,
		`INSERT INTO old_1 VALUES ('{"_id":"a"}'), ('{"_id":"b"}')`,
		`CREATE INDEX old_1`+oldIDIndexSuffix+` ON old_1 (`+idExpression+`)`,
		`CREATE UNIQUE INDEX old_1`+ferretIDIndexSuffix+` ON old_1 (_ferretdb_sjson->"_id")`,
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
	for _, replaced := range []string{"old_1" + oldIDIndexSuffix, "old_1" + ferretIDIndexSuffix} {
		var old int
		if err := conn.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE name = ?`, replaced).Scan(&old); err != nil || old != 0 {
			t.Fatalf("the index %s is still there (%d, %v)", replaced, old, err)
		}
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
	// The fixture writes beside Tables' own connections (its checkpoints
	// among them), so it waits for their locks as FerretDB's would.
	conn, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "db.sqlite")+"?_pragma=busy_timeout(10000)")
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

// The side tables' triggers of an earlier version are replaced at start-up
// by this version's, and the tables they kept are kept: no row is lost or
// added twice, and a later insert is indexed once. The grams, which the
// earlier version did not keep, are filled from the records.
func TestSideTriggersOfAnEarlierVersionAreReplaced(t *testing.T) {
	ctx := context.Background()
	dir, conn := sqliteFixture(t,
		`CREATE TABLE _ferretdb_collections (name TEXT, table_name TEXT)`,
		`INSERT INTO _ferretdb_collections VALUES ('customers', 'customers_1')`,
		`CREATE TABLE customers_1 (_ferretdb_sjson TEXT NOT NULL)`,
		`INSERT INTO customers_1 VALUES ('{"_id":"a","tenant_id":"t","tags":["vip","east"],"search_keys":["acme","13800","王伟"]}')`,
		`INSERT INTO customers_1 VALUES ('{"_id":"b","tenant_id":"t","tags":["vip"],"search_keys":["globex","王a"]}')`,
	)
	fields := map[string]Fields{"customers": {"tags": Terms, "search_keys": SearchTerms, "deleted_at": Time}}
	start := func() {
		t.Helper()
		tables, err := OpenTables(dir, "", "", "db")
		if err != nil {
			t.Fatal(err)
		}
		defer tables.Close()
		if _, err := tables.IndexQueries(ctx, nil, fields); err != nil {
			t.Fatal(err)
		}
	}
	count := func(q string) int {
		t.Helper()
		var n int
		if err := conn.QueryRowContext(ctx, q).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}
	exec := func(stmt string) {
		t.Helper()
		if _, err := conn.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	grams := func(id string) []string {
		t.Helper()
		rows, err := conn.QueryContext(ctx, `SELECT g.gram FROM customers_1_fieldcrm_grams AS g JOIN customers_1_fieldcrm_rows AS r ON r.n = g.n WHERE r.id = ? ORDER BY g.gram`, id)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var g string
			if err := rows.Scan(&g); err != nil {
				t.Fatal(err)
			}
			out = append(out, g)
		}
		return out
	}
	start()
	// Each record's pieces with a character past ASCII, once each.
	if got := grams("a"); !slices.Equal(got, []string{"伟", "王", "王伟"}) {
		t.Fatalf("grams of a: %q", got)
	}
	if got := grams("b"); !slices.Equal(got, []string{"王", "王a"}) {
		t.Fatalf("grams of b: %q", got)
	}
	// Make the database the version before's: its triggers by name (their
	// bodies do not matter here: start-up drops them unread), the side
	// tables it kept, and no grams.
	earlier := olderSideVersions()[len(olderSideVersions())-1]
	for _, op := range []string{"insert", "delete", "update"} {
		exec(`DROP TRIGGER "customers_1` + sideVersion + op + `"`)
		exec(`CREATE TRIGGER "customers_1` + earlier + op + `" AFTER ` + strings.ToUpper(op) + ` ON customers_1 BEGIN SELECT 1; END`)
	}
	exec(`DROP TABLE customers_1_fieldcrm_grams`)
	terms, fts := count(`SELECT count(*) FROM customers_1_fieldcrm_terms`), count(`SELECT count(*) FROM customers_1_fieldcrm_fts_search_keys`)
	if terms != 8 || fts != 2 {
		t.Fatalf("before the upgrade: %d terms and %d searched rows; want 8 and 2", terms, fts)
	}
	start()
	for _, v := range olderSideVersions() {
		if n := count(`SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'customers_1` + v + `%'`); n != 0 {
			t.Fatalf("%d triggers of %s left", n, v)
		}
	}
	if n := count(`SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'customers_1` + sideVersion + `%'`); n != 3 {
		t.Fatalf("%d triggers of %s; want 3", n, sideVersion)
	}
	if got := count(`SELECT count(*) FROM customers_1_fieldcrm_terms`); got != terms {
		t.Fatalf("%d terms after the upgrade; want %d", got, terms)
	}
	if got := count(`SELECT count(*) FROM customers_1_fieldcrm_fts_search_keys`); got != fts {
		t.Fatalf("%d searched rows after the upgrade; want %d", got, fts)
	}
	if got := grams("a"); !slices.Equal(got, []string{"伟", "王", "王伟"}) {
		t.Fatalf("grams of a after the upgrade: %q", got)
	}
	exec(`INSERT INTO customers_1 VALUES ('{"_id":"c","tenant_id":"t","tags":["new"],"search_keys":["initech","李"]}')`)
	if got := count(`SELECT count(*) FROM customers_1_fieldcrm_terms WHERE id = 'c'`); got != 3 {
		t.Fatalf("a new record has %d terms; want 3 (tag and keys, once each)", got)
	}
	if got := count(`SELECT count(*) FROM customers_1_fieldcrm_fts_search_keys WHERE items MATCH 'initech'`); got != 1 {
		t.Fatalf("the new record's key is found %d times; want 1", got)
	}
	if got := grams("c"); !slices.Equal(got, []string{"李"}) {
		t.Fatalf("grams of a new record: %q", got)
	}
	// A changed key moves its grams; a deleted record takes them along.
	exec(`UPDATE customers_1 SET _ferretdb_sjson = '{"_id":"b","tenant_id":"t","tags":["vip"],"search_keys":["globex","张三"]}' WHERE _ferretdb_sjson->>'$._id' = 'b'`)
	if got := grams("b"); !slices.Equal(got, []string{"三", "张", "张三"}) {
		t.Fatalf("grams of a changed record: %q", got)
	}
	exec(`DELETE FROM customers_1 WHERE _ferretdb_sjson->>'$._id' = 'a'`)
	if got := count(`SELECT count(*) FROM customers_1_fieldcrm_terms WHERE id = 'a'`); got != 0 {
		t.Fatalf("a deleted record keeps %d terms", got)
	}
	if got := count(`SELECT count(*) FROM customers_1_fieldcrm_grams`); got != 4 {
		t.Fatalf("%d grams after the delete; want those of b and c (4)", got)
	}
}
