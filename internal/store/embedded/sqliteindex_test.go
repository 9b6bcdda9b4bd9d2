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
	dir := t.TempDir()
	conn, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "db.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, q := range []string{
		`CREATE TABLE _ferretdb_collections (name TEXT, table_name TEXT)`,
		`INSERT INTO _ferretdb_collections VALUES ('old', 'old_1'), ('fresh', 'fresh_2')`,
		`CREATE TABLE old_1 (_ferretdb_sjson TEXT NOT NULL)`,
		`CREATE TABLE fresh_2 (_ferretdb_sjson TEXT NOT NULL)`,
		`INSERT INTO old_1 VALUES ('{"_id":"a"}'), ('{"_id":"b"}')`,
		`CREATE INDEX old_1` + oldIDIndexSuffix + ` ON old_1 (` + idExpression + `)`,
	} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
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
