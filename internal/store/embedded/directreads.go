package embedded

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"go.mongodb.org/mongo-driver/bson"

	"github.com/fieldcrm/fieldcrm/models"
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
	// schemas keeps the parsed schemas of the documents read.
	schemas *schemaCache
	// functionsReady tells that fieldcrm's functions are in the schema
	// (PostgreSQL, see pgfunctions.go).
	functionsReady atomic.Bool
}

// dialect is the SQL that differs between FerretDB's two backends.
type dialect struct {
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
	// sqlite tells the two apart where their SQL differs more than an
	// expression; like is the case-insensitive LIKE (ASCII folding on both).
	sqlite bool
	like   string
	// record, on PostgreSQL, names a jsonb_to_record row of the stored
	// document's top-level fields that path reads from instead of the
	// column: each read of the column unpacks the whole (compressed)
	// document again, the row's fields unpack it once (see tallyOf).
	record string
	// columns, on PostgreSQL, reads each field from a column of the
	// field's name and kind's type rather than from the document: the
	// side table of tallies (see IndexTallies).
	columns bool
	// shortGrams and pageDocument, on PostgreSQL, are the functions whose
	// index finds a search's needle of one or two characters, and that
	// turns a page's documents into text after the page is cut (see
	// pgfunctions.go), once they are there.
	shortGrams, pageDocument string
}

// OpenTables connects to the SQL tables of FerretDB database db: SQLite files
// under sqliteDir, opened with the URL parameters pragmas (FerretDB's own), or,
// when postgreSQLURL is set, that PostgreSQL database.
func OpenTables(sqliteDir, pragmas, postgreSQLURL, db string) (*Tables, error) {
	if postgreSQLURL != "" {
		cfg, err := pgx.ParseConfig(postgreSQLURL)
		if err != nil {
			return nil, fmt.Errorf("open PostgreSQL tables of %s: %w", db, err)
		}
		// No JIT compilation: fieldcrm's reads are pages, walks and
		// tallies, which PostgreSQL compiled whenever a plan's cost
		// passed jit_above_cost (a walk at 100,000 customers, and every
		// plan with a kind of scan turned off, see planned): a search's
		// walk took 36 ms with it, 12 ms without.
		cfg.RuntimeParams["jit"] = "off"
		conn := stdlib.OpenDB(*cfg)
		// Keep every connection open: database/sql keeps two idle by default,
		// so under load the others were closed on return and opened again,
		// a new PostgreSQL backend (a process start) each time, with the
		// statements prepared on it lost.
		conn.SetMaxOpenConns(maxPostgreSQLConns)
		conn.SetMaxIdleConns(maxPostgreSQLConns)
		schema := quoteIdent(db)
		t := &Tables{db: conn, writer: conn, schema: db, tables: map[string]string{}, schemas: &schemaCache{},
			dialect: dialect{
				column: "_jsonb", id: "(_jsonb->'_id')", jsonParam: func(n int) string { return fmt.Sprintf("$%d::jsonb", n) },
				tableOf:  fmt.Sprintf(`SELECT _jsonb->>'table' FROM %s.%s WHERE _jsonb->>'_id' = $1`, schema, quoteIdent("_ferretdb_database_metadata")),
				qualify:  func(table string) string { return schema + "." + quoteIdent(table) },
				document: `_jsonb::text`, tenant: `(_jsonb->>'tenant_id')`, seq: `((_jsonb->'seq')::bigint)`,
				param: func(n int) string { return fmt.Sprintf("$%d", n) },
				like:  "ILIKE",
			}}
		t.group = newCommitter(t.pipelined)
		t.readPipe = newReadPipeline(conn, readPipelines)
		return t, nil
	}
	path := filepath.Join(sqliteDir, db+".sqlite")
	// mode=rw: never create the file; FerretDB creates it with the first collection.
	// Each reader keeps 8 MiB of pages (SQLite's default is 2 MiB): a list
	// page or an export walks an index and the documents it names, and a
	// page missed is a read from the file.
	conn, err := sql.Open("sqlite", "file:"+path+"?mode=rw&_pragma=busy_timeout(10000)&_pragma=query_only(true)&_pragma=cache_size(-8192)")
	if err != nil {
		return nil, fmt.Errorf("open SQLite tables of %s: %w", db, err)
	}
	// Keep the readers' connections: database/sql keeps two idle by default,
	// so sixteen concurrent readers (the reminder worker) opened a new SQLite
	// connection, which reads the schema and prepares its statements anew,
	// for most reads.
	conn.SetMaxIdleConns(maxSQLiteReaders)
	conn.SetMaxOpenConns(maxSQLiteReaders)
	// The writer keeps 64 MiB of pages: a record's write changes its table,
	// each of its list indexes and its search tables, and with the default
	// 2 MiB the cache filled with changed pages mid-transaction and spilled
	// them to the log (a quarter of the time of seeding 10,000 customers).
	// temp_store=memory keeps the statement journals, which every write
	// that fires a trigger opens inside the transaction, off the disk.
	writer, err := sql.Open("sqlite", fmt.Sprintf("file:%s?mode=rw&_pragma=busy_timeout(10000)&_pragma=wal_autocheckpoint(%d)&_pragma=journal_size_limit(%d)&_pragma=cache_size(-65536)&_pragma=temp_store(memory)&%s", path, writerCheckpointPages, journalSizeLimit, pragmas))
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("open SQLite tables of %s for writing: %w", db, err)
	}
	// One writer connection: SQLite takes one write at a time anyway, and
	// waiting in the pool is cheaper than spinning on SQLITE_BUSY.
	writer.SetMaxOpenConns(1)
	t := &Tables{db: conn, writer: writer, sqlitePath: path, tables: map[string]string{}, schemas: &schemaCache{},
		reads: newStmtCache(conn), writes: newStmtCache(writer), dialect: dialect{
			column: "_ferretdb_sjson", id: idExpression, jsonParam: func(int) string { return "?" },
			tableOf:  `SELECT table_name FROM _ferretdb_collections WHERE name = ?`,
			qualify:  quoteIdent,
			document: `_ferretdb_sjson`, tenant: `(_ferretdb_sjson->>'$.tenant_id')`, seq: `(_ferretdb_sjson->>'$.seq')`,
			param:  func(n int) string { return fmt.Sprintf("?%d", n) },
			sqlite: true, like: "LIKE",
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

// syncIndexSuffix names the (tenant_id, seq) index of a table; on SQLite
// seenIndexSuffix names the index that replaces it there.
const (
	syncIndexSuffix = "_fieldcrm_sync"
	seenIndexSuffix = "_fieldcrm_sync_seen"
	// seqIndexSuffix names the plain (tenant_id, seq) index of a table
	// that is not synced but numbered: see IndexNumbered.
	seqIndexSuffix = "_fieldcrm_seq"
)

// IndexNumbered adds the (tenant_id, seq) index to the tables of colls that
// exist and lack it, and says how many it created: for the documents
// numbered per tenant that no pull reads (the customer-number claims), so
// that HighestSeq reads one index entry. FerretDB answers the same question
// by reading every document of the collection.
func (t *Tables) IndexNumbered(ctx context.Context, colls []string) (int, error) {
	specs := make([]indexSpec, len(colls))
	for i, coll := range colls {
		specs[i] = indexSpec{coll: coll, suffix: seqIndexSuffix, exprs: []string{t.dialect.tenant, t.dialect.seq}}
	}
	return t.ensureIndexes(ctx, specs)
}

// IndexSyncChanges adds the (tenant_id, seq) index to the tables of colls that
// exist and lack it, and says how many it created.
//
// On SQLite the index also holds what a pull tests before it sends a record
// (see ChangesSeen): its deletion, owner, team, assignee and earlier owners.
// SQLite tests those on each entry, as the pull reads the index in order,
// and reads a record only when it passes: with (tenant_id, seq) alone it
// read and parsed every record's JSON to test them, a third of a first
// pull's time, and all the records of a tenant for a rep who sees a tenth
// of them. The narrower index, if there, is dropped once this one is made.
func (t *Tables) IndexSyncChanges(ctx context.Context, colls []string) (int, error) {
	var specs []indexSpec
	for _, coll := range colls {
		spec := indexSpec{coll: coll, suffix: syncIndexSuffix, exprs: []string{t.dialect.tenant, t.dialect.seq}}
		if t.dialect.sqlite {
			spec.suffix = seenIndexSuffix
			spec.exprs = append(spec.exprs, t.dialect.seenExprs()...)
		}
		specs = append(specs, spec)
	}
	created, err := t.ensureIndexes(ctx, specs)
	if err != nil || !t.dialect.sqlite {
		return created, err
	}
	err = t.sqliteDDL(ctx, func(tx execer) error {
		for _, coll := range colls {
			table, err := t.table(ctx, coll)
			if err != nil {
				return err
			}
			if table == "" {
				continue
			}
			if _, err := tx.ExecContext(ctx, "DROP INDEX IF EXISTS "+quoteIdent(table+syncIndexSuffix)); err != nil {
				return fmt.Errorf("drop the index %s replaced: %w", table+syncIndexSuffix, err)
			}
		}
		return nil
	})
	return created, err
}

// seenExprs are the expressions, after tenant and seq, of the SQLite index
// ChangesSeen reads: the ones its conditions test (changesSeenSQL), written
// the same way, so that SQLite reads them from the index's entries.
func (d dialect) seenExprs() []string {
	return []string{d.path("deleted_at"), d.value("owner_id", Text), d.value("team_id", Text), d.value("assignee_id", Text), d.path("former")}
}

// indexSpec is an index of fieldcrm's on a collection's table.
type indexSpec struct {
	coll, suffix string
	exprs        []string
	// using is the index method on PostgreSQL ("" for the default, btree).
	using string
	// where, when set, makes a partial index of the records it holds for.
	where string
}

// ensureIndexes creates the indexes that are missing on tables that exist.
// On SQLite it opens a separate writable connection: Tables itself only
// reads.
func (t *Tables) ensureIndexes(ctx context.Context, specs []indexSpec) (int, error) {
	if t.sqlitePath == "" {
		return t.ensureIndexesOn(ctx, t.db, specs)
	}
	created := 0
	err := t.sqliteDDL(ctx, func(tx execer) (err error) {
		created, err = t.ensureIndexesOn(ctx, tx, specs)
		return err
	})
	return created, err
}

// execer runs statements: a connection pool or a transaction.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// sqliteDDL runs ddl in one transaction on a writable connection of its
// own (Tables itself only reads on SQLite). One transaction matters: each
// schema change committed alone makes every connection read the schema
// again, and fieldcrm's indexes and triggers are over a hundred statements.
func (t *Tables) sqliteDDL(ctx context.Context, ddl func(tx execer) error) error {
	// BEGIN IMMEDIATE: a transaction that reads first and writes later
	// cannot wait for another replica's (SQLite answers busy at once), so
	// it takes the write lock first and waits its turn.
	w, err := sql.Open("sqlite", "file:"+t.sqlitePath+"?mode=rw&_pragma=busy_timeout(10000)&_txlock=immediate")
	if err != nil {
		return fmt.Errorf("open %s for indexing: %w", t.sqlitePath, err)
	}
	defer w.Close()
	tx, err := w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("index %s: %w", t.sqlitePath, err)
	}
	defer func() { _ = tx.Rollback() }()
	if err := ddl(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("index %s: %w", t.sqlitePath, err)
	}
	return nil
}

// ensureIndexesOn creates the indexes of specs missing on tables that exist,
// through ex.
func (t *Tables) ensureIndexesOn(ctx context.Context, ex execer, specs []indexSpec) (int, error) {
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
			err = ex.QueryRowContext(ctx, q, name, t.schema).Scan(&exists)
		} else {
			err = ex.QueryRowContext(ctx, q, name).Scan(&exists)
		}
		if err != nil {
			return created, fmt.Errorf("look up index %s: %w", name, err)
		}
		if exists && t.sqlitePath != "" {
			// An index of an earlier version with other columns is made
			// again (the columns of an index are its expressions).
			var columns int
			if err := ex.QueryRowContext(ctx, `SELECT count(*) FROM pragma_index_info(?)`, name).Scan(&columns); err != nil {
				return created, fmt.Errorf("read the columns of index %s: %w", name, err)
			}
			if columns != len(spec.exprs) {
				if _, err := ex.ExecContext(ctx, "DROP INDEX "+quoteIdent(name)); err != nil {
					return created, fmt.Errorf("drop index %s of an earlier version: %w", name, err)
				}
				exists = false
			}
		}
		if exists {
			continue
		}
		using := ""
		if spec.using != "" {
			using = " USING " + spec.using
		}
		create := fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %s ON %s%s (%s)`,
			quoteIdent(name), t.dialect.qualify(table), using, strings.Join(spec.exprs, ", "))
		if spec.where != "" {
			create += " WHERE " + spec.where
		}
		if _, err := ex.ExecContext(ctx, create); err != nil {
			return created, fmt.Errorf("create %s: %w", name, err)
		}
		created++
	}
	return created, nil
}

// query runs q (with %s for the table) on coll's table and converts the
// documents it returns.
func (t *Tables) query(ctx context.Context, coll, q string, args ...any) ([]bson.Raw, error) {
	var out []bson.Raw
	err := t.each(ctx, coll, q, args, func(doc bson.Raw) error {
		out = append(out, doc)
		return nil
	})
	return out, err
}

// each runs q (with %s for the table, and the side tables' tokens) on
// coll's table and calls fn with each document it returns, converted, as
// the rows arrive.
func (t *Tables) each(ctx context.Context, coll, q string, args []any, fn func(bson.Raw) error) error {
	return t.eachPlanned(ctx, coll, q, args, nil, fn)
}

// eachPlanned is each with PostgreSQL's planner kept, for q alone, from the
// kinds of plan off names ("seqscan", "bitmapscan": SET LOCAL enable_… =
// off, in a read-only transaction of q's own), where its estimates pick a
// worse one (see findTerms). SQLite is told by the statement itself.
func (t *Tables) eachPlanned(ctx context.Context, coll, q string, args []any, off []string, fn func(bson.Raw) error) error {
	return t.eachKeeping(ctx, coll, q, args, off, nil, fn)
}

// eachKeeping is eachPlanned with the documents' top-level maps that keep
// names cut, as they are converted, to the one member keep gives for each,
// or left out where it gives "".
func (t *Tables) eachKeeping(ctx context.Context, coll, q string, args []any, off []string, keep map[string]string, fn func(bson.Raw) error) error {
	return t.retry(ctx, coll, func(table string) error {
		if table == "" {
			return nil
		}
		return t.planned(ctx, off, func(db querier) error {
			rows, err := db.QueryContext(ctx, fmt.Sprintf(indexToken(sideTokens(q, table), table), t.dialect.qualify(table)), args...)
			if err != nil {
				return err
			}
			defer rows.Close()
			// The text is read into one buffer, row after row: the
			// conversion copies what it keeps.
			var text sql.RawBytes
			for rows.Next() {
				if err := rows.Scan(&text); err != nil {
					return err
				}
				doc, err := sjsonToBSONKeeping(text, t.schemas, keep)
				if err != nil {
					return fmt.Errorf("convert a stored record: %w", err)
				}
				if err := fn(doc); err != nil {
					return err
				}
			}
			return rows.Err()
		})
	})
}

// querier is a connection pool or a transaction.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// planned runs fn on the pool, or, when off names kinds of plan, in a
// read-only transaction whose planner may not use them (PostgreSQL).
func (t *Tables) planned(ctx context.Context, off []string, fn func(db querier) error) error {
	if len(off) == 0 || t.dialect.sqlite {
		return fn(t.db)
	}
	tx, err := t.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	for _, kind := range off {
		if _, err := tx.ExecContext(ctx, "SET LOCAL enable_"+kind+" = off"); err != nil {
			return fmt.Errorf("leave %s plans out: %w", kind, err)
		}
	}
	return fn(tx)
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

// ChangesSeen is Changes narrowed to what an actor's pull may send, tested
// on each entry of the (tenant_id, seq) index as it is read in order, before
// any document is decoded: with live, the live documents sc (or, with
// orAssignee, an assignment) lets them see; without, also the deleted ones,
// and those with an earlier owner (a device of theirs may hold them). A
// rep's pull so decodes about the records it sends, not the whole tenant's.
// fn is called with each document, converted, as the rows arrive, with its
// per-field maps cut to what a pull reads of them (pulledMaps).
func (t *Tables) ChangesSeen(ctx context.Context, coll string, fields Fields, tenant string, after, upTo int64, limit int, sc models.Scope, orAssignee string, live bool, fn func(bson.Raw) error) error {
	stmt, args, err := t.dialect.changesSeenSQL(t.dialect.document, fields, tenant, after, upTo, limit, sc, orAssignee, live)
	if err != nil {
		return err
	}
	if err := t.eachKeeping(ctx, coll, stmt, args, nil, pulledMaps(), fn); err != nil {
		return fmt.Errorf("read %s changes of tenant %s: %w", coll, tenant, err)
	}
	return nil
}

// ExplainChangesSeen returns the database's plan for ChangesSeen, and that
// of a count of the records it selects (which on SQLite reads the index's
// entries alone when they hold everything its conditions test).
func (t *Tables) ExplainChangesSeen(ctx context.Context, coll string, fields Fields, sc models.Scope, orAssignee string, live bool) (plan, count string, err error) {
	plans := make([]string, 2)
	for i, what := range []string{t.dialect.document, "count(*)"} {
		stmt, args, err := t.dialect.changesSeenSQL(what, fields, "t", 0, 1, 10, sc, orAssignee, live)
		if err != nil {
			return "", "", err
		}
		if what != t.dialect.document {
			// The count's order would name a record's seq: SQLite reads
			// the record for it, but not to test the conditions.
			stmt, _, _ = strings.Cut(stmt, " ORDER BY ")
			args = args[:len(args)-1]
		}
		if plans[i], err = t.explain(ctx, coll, stmt, args...); err != nil {
			return "", "", err
		}
	}
	return plans[0], plans[1], nil
}

// changesSeenSQL is ChangesSeen's statement, selecting what, with %s for
// the table.
func (d dialect) changesSeenSQL(what string, fields Fields, tenant string, after, upTo int64, limit int, sc models.Scope, orAssignee string, live bool) (string, []any, error) {
	b := &sqlBuilder{d: d, fields: fields, tenant: tenant, scopeUnindexed: true}
	conds := []string{d.tenant + " = " + b.arg(tenant), d.seq + " > " + b.arg(after), d.seq + " <= " + b.arg(upTo)}
	if live {
		conds = append(conds, d.path("deleted_at")+" IS NULL")
	}
	vis, err := b.visibility(sc, orAssignee)
	if err != nil {
		return "", nil, err
	}
	switch {
	case vis != "" && live:
		conds = append(conds, vis)
	case vis != "":
		// models.Meta.Former: an empty list is stored as [], none as null.
		conds = append(conds, "("+vis+" OR coalesce("+d.path("former")+", '[]') <> '[]')")
	}
	if d.sqlite || what != d.document {
		return fmt.Sprintf(`SELECT %s FROM %%[1]s WHERE %s ORDER BY %s LIMIT %s`, what, strings.Join(conds, " AND "), d.seq, b.arg(limit)), b.args, nil
	}
	// PostgreSQL: the page's ids first, sorted with their numbers alone,
	// then its documents by id. In one statement it turned every record
	// the conditions passed into text and sorted those (a rep's 9,500
	// customers, 52 MB on disk, at 30,000), for each chunk of a page.
	return fmt.Sprintf(`SELECT %[1]s FROM (SELECT %[2]s AS id, %[3]s AS seq FROM %%[1]s WHERE %[4]s ORDER BY 2 LIMIT %[5]s) AS p CROSS JOIN %%[1]s WHERE %[2]s = p.id ORDER BY p.seq`,
		what, d.id, d.seq, strings.Join(conds, " AND "), b.arg(limit)), b.args, nil
}

// HighestSeq returns the highest seq of tenant's documents in coll, or 0,
// from the (tenant_id, seq) index alone.
func (t *Tables) HighestSeq(ctx context.Context, coll, tenant string) (int64, error) {
	var highest sql.NullInt64
	err := t.retry(ctx, coll, func(table string) error {
		if table == "" {
			return nil
		}
		return t.db.QueryRowContext(ctx, fmt.Sprintf(t.highestSeqSQL(), t.dialect.qualify(table)), tenant).Scan(&highest)
	})
	if err != nil {
		return 0, fmt.Errorf("highest seq of %s in tenant %s: %w", coll, tenant, err)
	}
	return highest.Int64, nil
}

// ExplainHighestSeq returns the database's plan for HighestSeq on coll, so
// tests can check that it reads one index entry rather than the table.
func (t *Tables) ExplainHighestSeq(ctx context.Context, coll string) (string, error) {
	return t.explain(ctx, coll, t.highestSeqSQL(), "t")
}

// highestSeqSQL is HighestSeq's query, with %s for the table.
func (t *Tables) highestSeqSQL() string {
	d := t.dialect
	return fmt.Sprintf(`SELECT max(%s) FROM %%s WHERE %s = %s`, d.seq, d.tenant, d.param(1))
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

func (t *Tables) explain(ctx context.Context, coll, q string, args ...any) (string, error) {
	return t.explainPlanned(ctx, coll, q, nil, args)
}

// explainPlanned is explain of a statement run with eachPlanned's off.
func (t *Tables) explainPlanned(ctx context.Context, coll, q string, off []string, args []any) (string, error) {
	table, err := t.table(ctx, coll)
	if err != nil || table == "" {
		return "", fmt.Errorf("no table for %s (%v)", coll, err)
	}
	explain := "EXPLAIN QUERY PLAN "
	tx, err := t.db.BeginTx(ctx, nil)
	if err != nil {
		return "", fmt.Errorf("explain: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if t.sqlitePath != "" {
		// An EXPLAIN reads no table, so SQLite would plan it on the schema
		// the connection last loaded, without indexes created since; a
		// read of the table first makes the connection load the current one.
		var one int
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM "+t.dialect.qualify(table)+" WHERE 0").Scan(&one); err != nil {
			return "", fmt.Errorf("explain: %w", err)
		}
	} else {
		// A test's table is small, and PostgreSQL reads a small table whole
		// whatever its indexes; with sequential scans priced out, the plan
		// shows whether an index can answer the query.
		explain = "EXPLAIN "
		for _, kind := range append([]string{"seqscan"}, off...) {
			if _, err := tx.ExecContext(ctx, "SET LOCAL enable_"+kind+" = off"); err != nil {
				return "", fmt.Errorf("explain: %w", err)
			}
		}
	}
	rows, err := tx.QueryContext(ctx, explain+fmt.Sprintf(sideTokens(q, table), t.dialect.qualify(table)), args...)
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
