package embedded

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	_ "modernc.org/sqlite" // the driver FerretDB itself uses, registered as "sqlite"
)

// idExpression is the exact expression FerretDB v1.24's SQLite backend filters on
// when a query's filter is just {_id: <string or ObjectID>}. FerretDB's own unique
// _id index is built on _ferretdb_sjson->"_id", a different expression, so SQLite
// never uses it and every lookup by _id scans the table. An index on this exact
// expression turns that scan into an index search (measured: 25 ms → 1.1 ms for
// an update by _id at 10,000 documents).
const idExpression = `_ferretdb_sjson->'$._id'`

// idIndexSuffix names the extra index; FerretDB names its own <table>_<index>.
// oldIDIndexSuffix named it while it was not unique.
// ferretIDIndexSuffix names FerretDB's own unique index of _id.
const (
	idIndexSuffix       = "_fieldcrm_id_unique"
	oldIDIndexSuffix    = "_fieldcrm_id_lookup"
	ferretIDIndexSuffix = "__id_"
)

// IndexIDLookups adds the _id lookup index to every collection table of database
// db, creating only what is missing. It opens the SQLite file beside FerretDB's
// own connections; SQLite's locking and FerretDB's busy timeout make that safe.
// FerretDB does not know about these indexes: dropping a collection drops its
// table and with it the index, and a new collection gets one at the next call.
//
// The index is unique (FerretDB's own index already keeps _id unique, so this
// refuses nothing new). That matters for writes: SQLite updates a row found
// through a unique index in one pass, while through a non-unique one it plans
// for several rows and keeps a statement journal, a copy of every page the
// statement changes, in case it has to undo the statement alone. That copying
// took a third of the committer's time in a push (internal/store/embedded/byid.go).
//
// Once it exists, FerretDB's own unique index of _id is dropped: both hold
// every _id, in two spellings SQLite cannot tell are the same, so every
// insert into every collection wrote two unique index entries for one key.
// Ours keeps _id unique alone, and FerretDB tells a duplicate _id by the
// constraint's error code, not by the index's name (its SQLite backend's
// InsertAll, v1.24); it keeps listing its _id_ index from its own metadata.
// The non-unique index of earlier versions is dropped too. Each step is one statement, so replicas starting together wait for
// each other (busy timeout) instead of failing, and no moment is without an
// index.
func IndexIDLookups(ctx context.Context, sqliteDir, db string) (created int, err error) {
	path := filepath.Join(sqliteDir, db+".sqlite")
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return 0, nil // no collection yet, nothing to index
	}
	conn, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", path, err)
	}
	defer conn.Close()

	tables, err := collectionTables(ctx, conn)
	if err != nil {
		return 0, fmt.Errorf("list collection tables of %s: %w", db, err)
	}
	for _, table := range tables {
		var exists int
		name := table + idIndexSuffix
		err := conn.QueryRowContext(ctx,
			`SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = ?`, name).Scan(&exists)
		if err != nil {
			return created, fmt.Errorf("look up index %s: %w", name, err)
		}
		if exists == 0 {
			q := fmt.Sprintf(`CREATE UNIQUE INDEX IF NOT EXISTS %q ON %q (%s)`, name, table, idExpression)
			if _, err := conn.ExecContext(ctx, q); err != nil {
				return created, fmt.Errorf("create %s: %w", name, err)
			}
			created++
		}
		for _, old := range []string{table + oldIDIndexSuffix, table + ferretIDIndexSuffix} {
			if _, err := conn.ExecContext(ctx, fmt.Sprintf(`DROP INDEX IF EXISTS %q`, old)); err != nil {
				return created, fmt.Errorf("drop the index %s the unique _id index replaces: %w", old, err)
			}
		}
	}
	return created, nil
}

// collectionTables lists the SQLite tables that hold collections, from FerretDB's
// own metadata table.
func collectionTables(ctx context.Context, conn *sql.DB) ([]string, error) {
	rows, err := conn.QueryContext(ctx, `SELECT table_name FROM _ferretdb_collections`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var tables []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			return nil, err
		}
		tables = append(tables, t)
	}
	return tables, rows.Err()
}

// ExplainIDLookup returns SQLite's query plan for the statement FerretDB runs for a
// lookup by _id on collection coll, so tests can prove the index is used.
func ExplainIDLookup(ctx context.Context, sqliteDir, db, coll string) (string, error) {
	path := filepath.Join(sqliteDir, db+".sqlite")
	conn, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		return "", fmt.Errorf("open %s: %w", path, err)
	}
	defer conn.Close()
	var table string
	if err := conn.QueryRowContext(ctx, `SELECT table_name FROM _ferretdb_collections WHERE name = ?`, coll).Scan(&table); err != nil {
		return "", fmt.Errorf("find table of %s: %w", coll, err)
	}
	q := fmt.Sprintf(`EXPLAIN QUERY PLAN SELECT _ferretdb_sjson FROM %q WHERE %s = ?`, table, idExpression)
	rows, err := conn.QueryContext(ctx, q, `"x"`)
	if err != nil {
		return "", fmt.Errorf("explain: %w", err)
	}
	defer rows.Close()
	var plan string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			return "", err
		}
		plan += detail + "\n"
	}
	return plan, rows.Err()
}

// DropIDLookupIndexes removes the indexes IndexIDLookups added to database db.
// It exists to measure what they are worth (see the store benchmarks); as
// IndexIDLookups dropped FerretDB's own, the tables are then without a
// unique _id index: for a throwaway database only.
func DropIDLookupIndexes(ctx context.Context, sqliteDir, db string) error {
	path := filepath.Join(sqliteDir, db+".sqlite")
	conn, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer conn.Close()
	tables, err := collectionTables(ctx, conn)
	if err != nil {
		return fmt.Errorf("list collection tables of %s: %w", db, err)
	}
	for _, table := range tables {
		if _, err := conn.ExecContext(ctx, fmt.Sprintf(`DROP INDEX IF EXISTS %q`, table+idIndexSuffix)); err != nil {
			return fmt.Errorf("drop index on %s: %w", table, err)
		}
	}
	return nil
}
