package embedded

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	"sync"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	"go.mongodb.org/mongo-driver/bson"
)

// Tables reads fieldcrm's sync changes straight from the SQL tables under an
// embedded FerretDB, next to FerretDB's own connections.
//
// Why: FerretDB v1.24 turns into SQL only a filter that is exactly {_id} (on
// SQLite) or plain equalities (on PostgreSQL). Any other query, such as "this
// tenant's records with a sync number above n, in order", makes it read and
// decode every document of the collection, about 0.45 ms per customer: a pull
// cost grew with the tenant, not with what changed. Here the same question is
// one SQL query on an expression index over (tenant_id, seq), and the stored
// JSON is converted to BSON without FerretDB's generic decoder.
//
// Only reads go this way; every write still goes through FerretDB, which stays
// the only writer of its tables. The indexes added here are unknown to FerretDB
// and harmless to it: dropping a collection drops them with its table.
type Tables struct {
	db      *sql.DB
	dialect dialect
	// writer writes documents by _id (see Write): on SQLite a connection of
	// its own (db only reads there), on PostgreSQL db itself.
	writer *sql.DB
	// group commits the writes of concurrent callers together, and
	// checkpoints copies the log into the database file (SQLite only).
	group       *committer
	checkpoints *checkpointer
	checkpoint  *sql.DB
	// reads and writes are the prepared statements on db and writer
	// (SQLite); on PostgreSQL readPipe pipelines reads by _id instead, and
	// pgx keeps the pipelines' statements prepared itself.
	reads, writes *stmtCache
	readPipe      *readPipeline
	// tables caches collection → table; a dropped collection's entry is
	// forgotten at the first "no such table".
	mu     sync.Mutex
	tables map[string]string
	// sqlitePath is the database file on SQLite, where db only reads; schema
	// the database's schema on PostgreSQL.
	sqlitePath, schema string
}

// dialect is the SQL that differs between FerretDB's two backends.
type dialect struct {
	// fieldOf is the SQL expression of a top-level field as text.
	fieldOf func(name string) string
	// tableOf looks up the table of a collection (one parameter: its name).
	tableOf string
	// qualify quotes a table name, with its schema on PostgreSQL.
	qualify func(table string) string
	// document, tenant and seq are the SQL expressions of the stored JSON text,
	// of its tenant_id and of its seq; the index is built on (tenant, seq).
	document, tenant, seq string
	param                 func(n int) string
	// column is the column of the stored JSON; id the expression of its _id
	// that FerretDB's unique index is built on (and, on SQLite, fieldcrm's
	// lookup index); jsonParam the n-th parameter as JSON.
	column, id string
	jsonParam  func(n int) string
}

// OpenTables connects to the SQL tables of FerretDB database db: SQLite files
// under sqliteDir, opened with the URL parameters pragmas (FerretDB's own), or,
// when postgreSQLURL is set, that PostgreSQL database.
func OpenTables(sqliteDir, pragmas, postgreSQLURL, db string) (*Tables, error) {
	if postgreSQLURL != "" {
		conn, err := sql.Open("pgx", postgreSQLURL)
		if err != nil {
			return nil, fmt.Errorf("open PostgreSQL tables of %s: %w", db, err)
		}
		// Keep every connection open: database/sql keeps two idle by default,
		// so under load the others were closed on return and opened again,
		// a new PostgreSQL backend (a process start) each time, with the
		// statements prepared on it lost.
		conn.SetMaxOpenConns(maxPostgreSQLConns)
		conn.SetMaxIdleConns(maxPostgreSQLConns)
		schema := quoteIdent(db)
		t := &Tables{db: conn, writer: conn, schema: db, tables: map[string]string{},
			dialect: dialect{
				column: "_jsonb", id: "(_jsonb->'_id')", jsonParam: func(n int) string { return fmt.Sprintf("$%d::jsonb", n) },
				tableOf:  fmt.Sprintf(`SELECT _jsonb->>'table' FROM %s.%s WHERE _jsonb->>'_id' = $1`, schema, quoteIdent("_ferretdb_database_metadata")),
				qualify:  func(table string) string { return schema + "." + quoteIdent(table) },
				document: `_jsonb::text`, tenant: `(_jsonb->>'tenant_id')`, seq: `((_jsonb->'seq')::bigint)`,
				fieldOf: func(name string) string { return `(_jsonb->>'` + name + `')` },
				param:   func(n int) string { return fmt.Sprintf("$%d", n) },
			}}
		t.group = newCommitter(t.pipelined)
		t.readPipe = newReadPipeline(conn, readPipelines)
		return t, nil
	}
	path := filepath.Join(sqliteDir, db+".sqlite")
	// mode=rw: never create the file; FerretDB creates it with the first collection.
	conn, err := sql.Open("sqlite", "file:"+path+"?mode=rw&_pragma=busy_timeout(10000)&_pragma=query_only(true)")
	if err != nil {
		return nil, fmt.Errorf("open SQLite tables of %s: %w", db, err)
	}
	// Keep the readers' connections: database/sql keeps two idle by default,
	// so sixteen concurrent readers (the reminder worker) opened a new SQLite
	// connection, which reads the schema and prepares its statements anew,
	// for most reads.
	conn.SetMaxIdleConns(maxSQLiteReaders)
	conn.SetMaxOpenConns(maxSQLiteReaders)
	writer, err := sql.Open("sqlite", fmt.Sprintf("file:%s?mode=rw&_pragma=busy_timeout(10000)&_pragma=wal_autocheckpoint(%d)&%s", path, writerCheckpointPages, pragmas))
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("open SQLite tables of %s for writing: %w", db, err)
	}
	// One writer connection: SQLite takes one write at a time anyway, and
	// waiting in the pool is cheaper than spinning on SQLITE_BUSY.
	writer.SetMaxOpenConns(1)
	t := &Tables{db: conn, writer: writer, sqlitePath: path, tables: map[string]string{},
		reads: newStmtCache(conn), writes: newStmtCache(writer), dialect: dialect{
			column: "_ferretdb_sjson", id: idExpression, jsonParam: func(int) string { return "?" },
			tableOf:  `SELECT table_name FROM _ferretdb_collections WHERE name = ?`,
			qualify:  quoteIdent,
			document: `_ferretdb_sjson`, tenant: `(_ferretdb_sjson->>'$.tenant_id')`, seq: `(_ferretdb_sjson->>'$.seq')`,
			fieldOf: func(name string) string { return `(_ferretdb_sjson->>'$.` + name + `')` },
			param:   func(int) string { return "?" },
		}}
	checkpoint, err := sql.Open("sqlite", "file:"+path+"?mode=rw&_pragma=busy_timeout(10000)&"+pragmas)
	if err != nil {
		conn.Close()
		writer.Close()
		return nil, fmt.Errorf("open SQLite tables of %s for checkpoints: %w", db, err)
	}
	checkpoint.SetMaxOpenConns(1)
	t.group = newCommitter(inTransaction(writer, t.applyWrites))
	t.checkpoint, t.checkpoints = checkpoint, startCheckpointer(checkpoint)
	return t, nil
}

// Close releases the connections.
func (t *Tables) Close() error {
	if t.group != nil {
		t.group.close()
	}
	if t.readPipe != nil {
		t.readPipe.close()
	}
	if t.checkpoints != nil {
		t.checkpoints.stop()
		_ = t.checkpoint.Close()
	}
	if t.reads != nil {
		t.reads.close()
		t.writes.close()
	}
	if t.writer != t.db {
		_ = t.writer.Close()
	}
	return t.db.Close()
}

// table returns the SQL table of collection coll, or "" when FerretDB has not
// created it yet.
func (t *Tables) table(ctx context.Context, coll string) (string, error) {
	t.mu.Lock()
	table, ok := t.tables[coll]
	t.mu.Unlock()
	if ok {
		return table, nil
	}
	err := t.db.QueryRowContext(ctx, t.dialect.tableOf, coll).Scan(&table)
	if errors.Is(err, sql.ErrNoRows) || isMissingTable(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("find the table of %s: %w", coll, err)
	}
	t.mu.Lock()
	t.tables[coll] = table
	t.mu.Unlock()
	return table, nil
}

// forget empties the table cache.
func (t *Tables) forget() {
	t.mu.Lock()
	clear(t.tables)
	t.mu.Unlock()
}

// retry runs op on coll's table, once more with a fresh lookup when the
// cached table is gone (the collection was dropped and may be re-created
// under another name). op gets "" when the collection does not exist.
func (t *Tables) retry(ctx context.Context, coll string, op func(table string) error) error {
	table, err := t.table(ctx, coll)
	if err != nil {
		return err
	}
	err = op(table)
	if table != "" && isMissingTable(err) {
		t.mu.Lock()
		delete(t.tables, coll)
		t.mu.Unlock()
		if table, err = t.table(ctx, coll); err != nil {
			return err
		}
		err = op(table)
	}
	return err
}

// maxPostgreSQLConns bounds the connections to PostgreSQL: one for the write
// pipeline, readPipelines for the read pipelines, one for the rest (pulls,
// reads asked again). Before the pipelines, 16 instead of 4 changed a 50,000
// reminder burst within the noise (52.9 s against 58.4 s); not measured since.
const maxPostgreSQLConns = 4

// readPipelines is how many read pipelines run at once on PostgreSQL, each
// on a connection of its own.
const readPipelines = 2

// maxSQLiteReaders bounds the reading connections to one SQLite database
// (WAL: they read alongside the writer).
const maxSQLiteReaders = 32

// syncIndexSuffix names the (tenant_id, seq) index of a table.
const syncIndexSuffix = "_fieldcrm_sync"

// IndexSyncChanges adds the (tenant_id, seq) index to the tables of colls that
// exist and lack it, and says how many it created.
func (t *Tables) IndexSyncChanges(ctx context.Context, colls []string) (int, error) {
	var specs []indexSpec
	for _, coll := range colls {
		specs = append(specs, indexSpec{coll: coll, suffix: syncIndexSuffix, exprs: []string{t.dialect.tenant, t.dialect.seq}})
	}
	return t.ensureIndexes(ctx, specs)
}

// IndexLookups adds a (tenant_id, field) index for each collection and
// field of fields (a customer's records by customer_id, an order's payments
// by order_id), for Equal; it says how many it created.
func (t *Tables) IndexLookups(ctx context.Context, fields map[string][]string) (int, error) {
	var specs []indexSpec
	for coll, names := range fields {
		for _, f := range names {
			expr, err := t.dialect.field(f)
			if err != nil {
				return 0, err
			}
			specs = append(specs, indexSpec{coll: coll, suffix: "_fieldcrm_" + f, exprs: []string{t.dialect.tenant, expr}})
		}
	}
	return t.ensureIndexes(ctx, specs)
}

// indexSpec is an index of fieldcrm's on a collection's table.
type indexSpec struct {
	coll, suffix string
	exprs        []string
}

// ensureIndexes creates the indexes that are missing on tables that exist.
// On SQLite it opens a separate writable connection: Tables itself only
// reads.
func (t *Tables) ensureIndexes(ctx context.Context, specs []indexSpec) (int, error) {
	conn := t.db
	if t.sqlitePath != "" {
		w, err := sql.Open("sqlite", "file:"+t.sqlitePath+"?mode=rw&_pragma=busy_timeout(10000)")
		if err != nil {
			return 0, fmt.Errorf("open %s for indexing: %w", t.sqlitePath, err)
		}
		defer w.Close()
		conn = w
	}
	created := 0
	for _, spec := range specs {
		table, err := t.table(ctx, spec.coll)
		if err != nil || table == "" {
			if err != nil {
				return created, err
			}
			continue
		}
		name := table + spec.suffix
		var exists bool
		q := `SELECT count(*) > 0 FROM sqlite_master WHERE type = 'index' AND name = ?`
		if t.sqlitePath == "" {
			q = `SELECT count(*) > 0 FROM pg_indexes WHERE indexname = $1 AND schemaname = $2`
			err = conn.QueryRowContext(ctx, q, name, t.schema).Scan(&exists)
		} else {
			err = conn.QueryRowContext(ctx, q, name).Scan(&exists)
		}
		if err != nil {
			return created, fmt.Errorf("look up index %s: %w", name, err)
		}
		if exists {
			continue
		}
		create := fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %s ON %s (%s)`,
			quoteIdent(name), t.dialect.qualify(table), strings.Join(spec.exprs, ", "))
		if _, err := conn.ExecContext(ctx, create); err != nil {
			return created, fmt.Errorf("create %s: %w", name, err)
		}
		created++
	}
	return created, nil
}

// Equal returns, in _id order, at most limit documents of collection coll
// with tenant_id tenant and the top-level string field equal to value,
// without tombstones unless withDeleted: the one query of a customer's
// records or an order's payments, answered from the index IndexLookups
// made. (Without it, FerretDB on SQLite decodes every document of the
// collection for such a query.)
func (t *Tables) Equal(ctx context.Context, coll, tenant, field, value string, withDeleted bool, limit int) ([]bson.Raw, error) {
	q, err := t.equalSQL(field, withDeleted)
	if err != nil {
		return nil, err
	}
	out, err := t.query(ctx, coll, q, tenant, value, limit)
	if err != nil {
		return nil, fmt.Errorf("read %s of tenant %s by %s: %w", coll, tenant, field, err)
	}
	return out, nil
}

// equalSQL is Equal's query, with %s for the table: the one ExplainEqual
// explains.
func (t *Tables) equalSQL(field string, withDeleted bool) (string, error) {
	d := t.dialect
	expr, err := d.field(field)
	if err != nil {
		return "", err
	}
	live := ""
	if !withDeleted {
		deleted, _ := d.field("deleted_at")
		live = " AND " + deleted + " IS NULL"
	}
	return fmt.Sprintf(`SELECT %s FROM %%s WHERE %s = %s AND %s = %s%s ORDER BY %s LIMIT %s`,
		d.document, d.tenant, d.param(1), expr, d.param(2), live, d.id, d.param(3)), nil
}

// query runs q (with %s for the table) on coll's table and converts the
// documents it returns.
func (t *Tables) query(ctx context.Context, coll, q string, args ...any) ([]bson.Raw, error) {
	var out []bson.Raw
	err := t.retry(ctx, coll, func(table string) error {
		if table == "" {
			return nil
		}
		rows, err := t.db.QueryContext(ctx, fmt.Sprintf(q, t.dialect.qualify(table)), args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		var text []byte
		for rows.Next() {
			if err := rows.Scan(&text); err != nil {
				return err
			}
			doc, err := sjsonToBSON(text)
			if err != nil {
				return fmt.Errorf("convert a stored record: %w", err)
			}
			out = append(out, doc)
		}
		return rows.Err()
	})
	return out, err
}

// Changes returns, in seq order, at most limit documents of collection coll
// with tenant_id tenant and after < seq <= upTo, tombstones included.
func (t *Tables) Changes(ctx context.Context, coll, tenant string, after, upTo int64, limit int) ([]bson.Raw, error) {
	out, err := t.query(ctx, coll, t.changesSQL(), tenant, after, upTo, limit)
	if err != nil {
		return nil, fmt.Errorf("read %s changes of tenant %s: %w", coll, tenant, err)
	}
	return out, nil
}

// HighestSeq returns the highest seq of tenant's documents in coll, or 0,
// from the (tenant_id, seq) index alone.
func (t *Tables) HighestSeq(ctx context.Context, coll, tenant string) (int64, error) {
	var highest sql.NullInt64
	err := t.retry(ctx, coll, func(table string) error {
		if table == "" {
			return nil
		}
		d := t.dialect
		q := fmt.Sprintf(`SELECT max(%s) FROM %s WHERE %s = %s`, d.seq, d.qualify(table), d.tenant, d.param(1))
		return t.db.QueryRowContext(ctx, q, tenant).Scan(&highest)
	})
	if err != nil {
		return 0, fmt.Errorf("highest seq of %s in tenant %s: %w", coll, tenant, err)
	}
	return highest.Int64, nil
}

// ExplainChanges returns the database's plan for Changes on coll, so tests can
// check that it reads the index rather than the whole table.
func (t *Tables) ExplainChanges(ctx context.Context, coll string) (string, error) {
	return t.explain(ctx, coll, t.changesSQL(), "t", 0, 1, 10)
}

// changesSQL is Changes' query, with %s for the table.
func (t *Tables) changesSQL() string {
	d := t.dialect
	return fmt.Sprintf(`SELECT %s FROM %%s WHERE %s = %s AND %s > %s AND %s <= %s ORDER BY %s LIMIT %s`,
		d.document, d.tenant, d.param(1), d.seq, d.param(2), d.seq, d.param(3), d.seq, d.param(4))
}

// ExplainEqual returns the database's plan for Equal on coll and field (live
// records only).
func (t *Tables) ExplainEqual(ctx context.Context, coll, field string) (string, error) {
	q, err := t.equalSQL(field, false)
	if err != nil {
		return "", err
	}
	return t.explain(ctx, coll, q, "t", "v", 10)
}

func (t *Tables) explain(ctx context.Context, coll, q string, args ...any) (string, error) {
	table, err := t.table(ctx, coll)
	if err != nil || table == "" {
		return "", fmt.Errorf("no table for %s (%v)", coll, err)
	}
	explain := "EXPLAIN QUERY PLAN "
	if t.sqlitePath == "" {
		explain = "EXPLAIN "
	}
	rows, err := t.db.QueryContext(ctx, explain+fmt.Sprintf(q, t.dialect.qualify(table)), args...)
	if err != nil {
		return "", fmt.Errorf("explain: %w", err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var plan strings.Builder
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return "", err
		}
		fmt.Fprintln(&plan, vals[len(vals)-1])
	}
	return plan.String(), rows.Err()
}

// plainField is what a field name in SQL built here may be.
var plainField = regexp.MustCompile(`^[a-z][a-z_]*$`)

// field is the expression of a top-level field, for names of fieldcrm's own
// (never a client's: they become SQL text).
func (d dialect) field(name string) (string, error) {
	if !plainField.MatchString(name) {
		return "", fmt.Errorf("embedded: %q is not a plain field name", name)
	}
	return d.fieldOf(name), nil
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// isMissingTable tells FerretDB's metadata table not existing yet (no
// collection created) from a real failure.
func isMissingTable(err error) bool {
	if err == nil {
		return false
	}
	msg := err.Error()
	return strings.Contains(msg, "no such table") || strings.Contains(msg, "does not exist") || strings.Contains(msg, "unable to open database file")
}
