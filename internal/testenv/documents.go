package testenv

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	_ "modernc.org/sqlite"             // the driver FerretDB itself uses, registered as "sqlite"
)

// Documents reads every document of one database as FerretDB stored it,
// straight from its SQL tables: a few milliseconds for a test's database,
// where reading it through the driver costs about half a millisecond per
// document (FerretDB decodes each). Tests that compare the stored data
// before and after each request (the fuzz targets, the role matrices) use
// it.
type Documents struct {
	db *sql.DB
	// collections lists the database's collections and their tables; rows
	// reads the _id (as JSON) and the text of each document of table %s.
	collections, rows string
}

// Documents returns a reader of database db's stored documents, closed when
// t ends; nil when the tests run through the driver alone (MONGODB_URI),
// where the caller reads through the driver instead.
func (e *Env) Documents(t testing.TB, db string) *Documents {
	t.Helper()
	if e.ferret == nil {
		return nil
	}
	var d Documents
	var err error
	if e.postgreSQLURL != "" {
		d.db, err = sql.Open("pgx", e.postgreSQLURL)
		d.collections = fmt.Sprintf(`SELECT _jsonb->>'_id', _jsonb->>'table' FROM %s."_ferretdb_database_metadata"`, quoteIdent(db))
		d.rows = `SELECT (_jsonb->'_id')::text, _jsonb::text FROM ` + quoteIdent(db) + `.%s`
	} else {
		// query_only: FerretDB stays the only writer of its tables.
		d.db, err = sql.Open("sqlite", "file:"+filepath.Join(e.SQLiteDir(), db+".sqlite")+"?mode=rw&_pragma=busy_timeout(10000)&_pragma=query_only(true)")
		d.collections = `SELECT name, table_name FROM _ferretdb_collections`
		d.rows = `SELECT _ferretdb_sjson->'$._id', _ferretdb_sjson FROM %s`
	}
	if err != nil {
		t.Fatalf("open the tables of %s: %v", db, err)
	}
	d.db.SetMaxOpenConns(1)
	t.Cleanup(func() { _ = d.db.Close() })
	return &d
}

// All returns every stored document of the database, by "collection/_id"
// (the _id as JSON, as a string's extended JSON is), each as its stored JSON
// text. One read transaction sees them all at one instant.
func (d *Documents) All(ctx context.Context) (map[string]string, error) {
	tx, err := d.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("read stored documents: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	tables := map[string]string{} // collection → table
	if err := each(ctx, tx, d.collections, func(name, table string) { tables[name] = table }); err != nil {
		return nil, fmt.Errorf("list collections: %w", err)
	}
	out := map[string]string{}
	for name, table := range tables {
		q := fmt.Sprintf(d.rows, quoteIdent(table))
		if err := each(ctx, tx, q, func(id, doc string) { out[name+"/"+id] = doc }); err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
	}
	return out, nil
}

// each calls fn with the two text columns of each row q returns.
func each(ctx context.Context, tx *sql.Tx, q string, fn func(a, b string)) error {
	rows, err := tx.QueryContext(ctx, q)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var a, b string
		if err := rows.Scan(&a, &b); err != nil {
			return err
		}
		fn(a, b)
	}
	return rows.Err()
}

func quoteIdent(name string) string { return `"` + strings.ReplaceAll(name, `"`, `""`) + `"` }
