package embedded

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"

	"go.mongodb.org/mongo-driver/bson"

	"github.com/fieldcrm/fieldcrm/models"
)

// Queries: a models.Query answered by one SQL statement on the tables under
// FerretDB, from expression indexes (IndexQueries) instead of FerretDB's
// decoding of every document. The Query is the one description of a read;
// Find turns it into SQL here and into a MongoDB filter in package store.

// Kind is how a stored field compares and sorts; it picks the SQL expression
// of the field (on PostgreSQL a date is a number, a string compares
// bytewise as MongoDB does).
type Kind int

// Kinds of fields.
const (
	Text     Kind = iota + 1
	Number        // integers and floating point
	Time          // BSON dates, stored as epoch milliseconds
	TextList      // an array of strings: equality means "contains"
	Object        // a nested document or anything else: only null checks
	// Terms is a TextList with an index of its items (a side table kept by
	// triggers on SQLite, GIN on PostgreSQL); SearchTerms also indexes
	// substrings of them (FTS5's trigrams on SQLite, pg_trgm on PostgreSQL).
	Terms
	SearchTerms
	// SearchText is a Text with an index of its substrings, for a
	// case-insensitive search (FTS5 trigrams on SQLite, pg_trgm on PostgreSQL).
	SearchText
)

// isText tells the kinds of single strings.
func (k Kind) isText() bool { return k == Text || k == SearchText }

// isList tells the kinds of arrays.
func (k Kind) isList() bool { return k == TextList || k == Terms || k == SearchTerms }

// Fields are the kinds of the fields queries on a collection may use (dotted
// for nested ones); a query naming another field is not translated.
type Fields map[string]Kind

// ErrUntranslatable says a query uses something the SQL translation does not
// cover; the caller asks FerretDB instead.
var ErrUntranslatable = errors.New("embedded: query not translatable to SQL")

// Index is one of fieldcrm's indexes on a collection, as its fields in order
// (tenant_id first, _id last to order ties as lists do).
type Index struct {
	Name   string
	Fields []string
	// Deleted keeps entries of deleted records only (a partial index on the
	// embedded engines): the purge's lookup of old tombstones. A whole
	// index led by deleted_at looked, to SQLite's planner, like the way to
	// every live list (deleted_at IS NULL), and cost each write an entry.
	// MongoDB gets the whole index (see store.indexQueries).
	Deleted bool
}

// IndexQueries creates, on the tables that exist, the expression indexes of
// indexes (collection → its indexes), with the fields' kinds in fields, and
// the indexes of their Terms and SearchTerms fields; it says how many it
// created.
func (t *Tables) IndexQueries(ctx context.Context, indexes map[string][]Index, fields map[string]Fields) (int, error) {
	var specs []indexSpec
	for coll, list := range indexes {
		for _, ix := range list {
			if listField(ix, fields[coll]) != "" {
				continue // arrays: see below
			}
			exprs := make([]string, 0, len(ix.Fields)+1)
			for _, f := range ix.Fields {
				e, err := t.dialect.indexed(f, fields[coll])
				if err != nil {
					return 0, fmt.Errorf("index %s of %s: %w", ix.Name, coll, err)
				}
				exprs = append(exprs, e)
			}
			if t.dialect.sqlite && ix.Fields[len(ix.Fields)-1] == "_id" && fields[coll]["deleted_at"] != 0 {
				// Every list tests that its records are live: SQLite tests
				// it on the entry when the index holds deleted_at, and
				// otherwise parses each record's JSON to read it (two
				// fifths of a rep's page of customers). PostgreSQL reads a
				// field without parsing the document, and MongoDB's
				// indexes stay as migration 12 made them.
				e, err := t.dialect.indexed("deleted_at", fields[coll])
				if err != nil {
					return 0, fmt.Errorf("index %s of %s: %w", ix.Name, coll, err)
				}
				exprs = append(exprs, e)
			}
			spec := indexSpec{coll: coll, suffix: "_fieldcrm_q_" + ix.Name, exprs: exprs}
			if ix.Deleted {
				// A query with a comparison of deleted_at implies the
				// condition, so both planners may read this index for it.
				spec.where = t.dialect.value("deleted_at", fields[coll]["deleted_at"]) + " IS NOT NULL"
			}
			specs = append(specs, spec)
		}
	}
	created := 0
	if t.dialect.sqlite {
		err := t.sqliteDDL(ctx, func(tx execer) error {
			for coll, f := range fields {
				made, err := t.ensureSideTables(ctx, tx, coll, f)
				if err != nil {
					return err
				}
				if made {
					created++
				}
			}
			n, err := t.ensureIndexesOn(ctx, tx, specs)
			created += n
			if err != nil {
				return err
			}
			return t.retireIndexesOn(ctx, tx, indexes)
		})
		if err != nil {
			return created, err
		}
	} else {
		// pg_trgm ships with PostgreSQL; a role that may not add it gets
		// substring searches without their index (slower, same answers).
		_, err := t.db.ExecContext(ctx, "CREATE EXTENSION IF NOT EXISTS pg_trgm")
		grams, gramsErr := t.ensureFunctions(ctx)
		if gramsErr != nil {
			return created, gramsErr
		}
		for coll, f := range fields {
			specs = append(specs, t.listSpecs(coll, f, err == nil)...)
			if grams {
				specs = append(specs, t.shortGramsSpecs(coll, f)...)
			}
			if err := t.keepInline(ctx, coll); err != nil {
				return created, err
			}
			if f["deleted_at"] != 0 {
				if err := t.liveStatistics(ctx, coll); err != nil {
					return created, err
				}
			}
		}
		n, err := t.ensureIndexesOn(ctx, t.db, specs)
		created += n
		if err != nil {
			return created, err
		}
		if err := t.retireIndexesOn(ctx, t.db, indexes); err != nil {
			return created, err
		}
		t.functionsReady.Store(grams)
	}
	// 0x10002: analyze the tables that have no statistics or changed much
	// since, as a long-lived connection should when it opens.
	return created, t.sqliteStatistics(ctx, "PRAGMA optimize = 0x10002")
}

// retireIndexesOn drops the query indexes (named by IndexQueries) of the
// collections of indexes that are no longer among them, such as one a
// wider index replaced: each would only cost every write.
func (t *Tables) retireIndexesOn(ctx context.Context, ex execer, indexes map[string][]Index) error {
	for coll, list := range indexes {
		table, err := t.table(ctx, coll)
		if err != nil {
			return err
		}
		if table == "" {
			continue
		}
		prefix := table + "_fieldcrm_q_"
		q, args := `SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?1`, []any{table}
		if !t.dialect.sqlite {
			q, args = `SELECT indexname FROM pg_indexes WHERE tablename = $1 AND schemaname = $2`, []any{table, t.schema}
		}
		rows, err := ex.QueryContext(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("list the indexes of %s: %w", table, err)
		}
		var retired []string
		for rows.Next() {
			var name string
			if err := rows.Scan(&name); err != nil {
				rows.Close()
				return fmt.Errorf("list the indexes of %s: %w", table, err)
			}
			short, ours := strings.CutPrefix(name, prefix)
			if ours && !slices.ContainsFunc(list, func(ix Index) bool { return ix.Name == short }) {
				retired = append(retired, name)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("list the indexes of %s: %w", table, err)
		}
		for _, name := range retired {
			drop := "DROP INDEX IF EXISTS " + quoteIdent(name)
			if !t.dialect.sqlite {
				// CONCURRENTLY: without it the drop waits for every read of
				// the table and holds up those that come after.
				drop = "DROP INDEX CONCURRENTLY IF EXISTS " + t.dialect.qualify(name)
			}
			if _, err := ex.ExecContext(ctx, drop); err != nil {
				return fmt.Errorf("drop the retired index %s: %w", name, err)
			}
		}
	}
	return nil
}

// liveStatistics gives PostgreSQL statistics of the test every list makes,
// that a record is live (its deleted_at IS NULL), and analyzes coll when it
// makes them. PostgreSQL keeps statistics of columns and of indexes'
// expressions only, and no index holds deleted_at as the lists test it:
// without them the planner took 0.5 % of a tenant's records for live,
// judged a sort of that few cheaper than walking the list's index in order,
// and read the whole table for each page (a list page at 20,000 customers:
// 829 ms, against 9 ms with them). A statistics object on the expression
// costs no write, unlike an index.
func (t *Tables) liveStatistics(ctx context.Context, coll string) error {
	table, err := t.table(ctx, coll)
	if err != nil || table == "" {
		return err
	}
	name := table + "_fieldcrm_live"
	var exists bool
	err = t.db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_statistic_ext s JOIN pg_namespace n ON n.oid = s.stxnamespace
		WHERE n.nspname = $1 AND s.stxname = $2)`, t.schema, name).Scan(&exists)
	if err != nil || exists {
		return err
	}
	if _, err := t.db.ExecContext(ctx, fmt.Sprintf("CREATE STATISTICS IF NOT EXISTS %s ON (%s) FROM %s",
		t.dialect.qualify(name), t.dialect.path("deleted_at"), t.dialect.qualify(table))); err != nil {
		return fmt.Errorf("make the statistics of live records of %s: %w", table, err)
	}
	if _, err := t.db.ExecContext(ctx, "ANALYZE "+t.dialect.qualify(table)); err != nil {
		return fmt.Errorf("analyze %s: %w", table, err)
	}
	return nil
}

// keepInline has PostgreSQL keep coll's documents in the table's own pages
// when they fit one (8 KB), instead of moving each one over 2 KB to the
// table's TOAST table, where every read of a document was a lookup in that
// table's index and a read of its chunks: twice the time of a tally (30,000
// customer documents of about 2.2 KB: 0.30 s against 0.15 s), and of every
// read of a record. It changes how later writes store documents (FerretDB's
// included); documents stored before move when next written.
func (t *Tables) keepInline(ctx context.Context, coll string) error {
	inline, err := t.KeepsDocumentsInline(ctx, coll)
	if err != nil || inline {
		return err // as wanted: no lock taken
	}
	table, err := t.table(ctx, coll)
	if err != nil || table == "" {
		return err
	}
	_, err = t.db.ExecContext(ctx, "ALTER TABLE "+t.dialect.qualify(table)+
		" SET (toast_tuple_target = 8160), ALTER COLUMN _jsonb SET STORAGE MAIN")
	if err != nil {
		return fmt.Errorf("keep the documents of %s in its pages: %w", table, err)
	}
	return nil
}

// KeepsDocumentsInline reports whether PostgreSQL keeps coll's documents in
// the table's own pages (see keepInline); true on SQLite and for a
// collection with no table yet.
func (t *Tables) KeepsDocumentsInline(ctx context.Context, coll string) (bool, error) {
	table, err := t.table(ctx, coll)
	if err != nil || table == "" || t.dialect.sqlite {
		return err == nil, err
	}
	var storage, options string
	err = t.db.QueryRowContext(ctx, `SELECT a.attstorage::text, coalesce(array_to_string(c.reloptions, ','), '')
		FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relname = $2 AND a.attname = '_jsonb'`, t.schema, table).Scan(&storage, &options)
	if err != nil {
		return false, fmt.Errorf("read the storage of %s: %w", table, err)
	}
	return storage == "m" && strings.Contains(options, "toast_tuple_target=8160"), nil
}

// listField is the array field of ix, if it has one.
func listField(ix Index, fields Fields) string {
	for _, f := range ix.Fields {
		if fields[f].isList() {
			return f
		}
	}
	return ""
}

// Hints name the indexes a statement reads where SQLite's planner, with
// the statistics of a whole tenant, chose worse: it weighs reading records
// in an index's order against reading the table in its own, and a page
// needs the first 51 in order, which its estimates do not see.
type Hints struct {
	// Page names an index of the collection (one of IndexQueries') that
	// holds every field q uses, from whose entries the ids of q's page are
	// read before any record (see pageIDs, findByWalk).
	Page string
	// Flags names, by field, the index of a flag (an object set on few
	// records, such as a customer's duplicate mark) that a query for the
	// records that have it starts from.
	Flags map[string]string
}

// named tells hints that name any index.
func (h Hints) named() bool { return h.Page != "" || len(h.Flags) > 0 }

// Find calls each with every document of coll that q selects, in q's order,
// streaming them (memory stays flat however many match). It returns
// ErrUntranslatable, before reading anything, for a query it cannot express.
// hints name the indexes SQLite reads (see Hints); none lets the database
// choose.
func (t *Tables) Find(ctx context.Context, coll string, fields Fields, q models.Query, hints Hints, each func(bson.Raw) error) error {
	if hints.Page != "" && q.Limit > 0 && searchesText(fields, q) {
		// A customer search chooses (see findTerms); the other searches
		// walk first.
		filled, err := t.findTerms(ctx, coll, fields, q, hints.Page, each)
		if !filled && err == nil {
			filled, err = t.findByWalk(ctx, coll, fields, q, hints.Page, each)
		}
		if err != nil && strings.Contains(err.Error(), "no such index") {
			hints, err = Hints{}, nil
		}
		if err != nil {
			return fmt.Errorf("search %s of tenant %s: %w", coll, q.Tenant, err)
		}
		if filled {
			return nil
		}
		// A rarer word or tag: its own index names the records (the span
		// index would walk the whole list).
		hints.Page = ""
	}
	stmt, args, err := t.withFunctions().selectOf(fields, q, hints)
	if err != nil {
		return err
	}
	err = t.eachKeeping(ctx, coll, stmt, args, t.dialect.streamPlanner(q), shownCut(q), each)
	if err != nil && hints.named() && strings.Contains(err.Error(), "no such index") {
		// A table made after start-up has not got the index yet (SQLite
		// refuses the statement before it reads anything): the answer is
		// the same, read the long way.
		return t.Find(ctx, coll, fields, q, Hints{}, each)
	}
	if err != nil {
		return fmt.Errorf("query %s of tenant %s: %w", coll, q.Tenant, err)
	}
	return nil
}

// walkedPerRecord is how many records a search by substring examines, in
// list order, for each record of its page before it turns to the index of
// the searched text (see findByWalk): a word one record in forty holds
// fills a page this way.
const walkedPerRecord = 40

// Walked tells the conditions a page may be found by walking the list in
// order (see findByWalk): a substring search of text and an array holding a
// value (a tag), which may match one record in five or one in a hundred
// thousand. A search of a customer's keys (SearchTerms) walks only when its
// candidates are many (see findTerms): most name a few customers (a number,
// an e-mail), and a walk that found none of them read 2,000 records first
// (70 ms at 20,000 customers).
func Walked(fields Fields, c models.Cond) bool {
	k := fields[c.Field]
	return (c.Op == models.OpContains && (k == SearchText || k == SearchTerms)) || (c.Op == models.OpEq && k == Terms)
}

// searchesText tells a query with a condition Walked.
func searchesText(fields Fields, q models.Query) bool {
	for _, c := range q.Conds {
		if Walked(fields, c) {
			return true
		}
	}
	return false
}

// findByWalk answers a substring search from the first records, in id
// order, that the rest of q selects (read from index's entries), testing
// the text of each: a common word (报价 is in one interaction in eight)
// fills a page within a few hundred, where the index of the text would
// name every record that holds it, all to be read and sorted. It says
// whether the walk answered q, and calls each only then: when it filled
// the page, or (on PostgreSQL, whose walk counts what it examined, see
// walkRecords) read the whole list. A rarer word is left to the index of
// the text.
func (t *Tables) findByWalk(ctx context.Context, coll string, fields Fields, q models.Query, index string, each func(bson.Raw) error) (bool, error) {
	var page []bson.Raw
	var answered bool
	if t.dialect.sqlite {
		stmt, args, err := t.dialect.walkOf(fields, q, index, q.Limit*walkedPerRecord)
		if errors.Is(err, ErrUntranslatable) {
			return false, nil // the statement without a walk may still translate
		}
		if err != nil {
			return false, err
		}
		err = t.eachKeeping(ctx, coll, stmt, args, nil, shownCut(q), func(doc bson.Raw) error {
			page = append(page, slices.Clone(doc))
			return nil
		})
		if err != nil {
			return false, err
		}
		answered = len(page) >= q.Limit
	} else {
		var err error
		page, answered, err = t.walkRecords(ctx, coll, fields, q, index)
		if errors.Is(err, ErrUntranslatable) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
	}
	if !answered {
		return false, nil
	}
	for _, doc := range page {
		if err := each(doc); err != nil {
			return true, err
		}
	}
	return true, nil
}

// walkOf is the statement of findByWalk: q's page among the first walk
// records, in q's order, that q without its substring searches selects,
// those read from index's entries alone.
func (d dialect) walkOf(fields Fields, q models.Query, index string, walk int) (string, []any, error) {
	rest := withoutWalked(fields, q)
	rest.Limit = walk
	ids, args, err := d.pageIDs(fields, rest, index, nil)
	if err != nil {
		return "", nil, err
	}
	// The records: by id, tested for the searches alone (see pageOf), then
	// for the tenant: SQLite stops at the first condition that fails, and
	// reading the tenant parses the record's JSON, which the searches of
	// text no longer do (see cond).
	b := &sqlBuilder{d: d, fields: fields, tenant: q.Tenant, exactSearch: true, args: args}
	b.conds = append(b.conds, b.drive(ids))
	for _, c := range q.Conds {
		if Walked(fields, c) {
			cond, err := b.cond(c)
			if err != nil {
				return "", nil, err
			}
			b.conds = append(b.conds, cond)
		}
	}
	b.conds = append(b.conds, d.tenant+" = "+b.arg(q.Tenant))
	order, err := b.order(q)
	if err != nil {
		return "", nil, err
	}
	stmt := fmt.Sprintf("SELECT %s FROM (%s) AS m CROSS JOIN %%[1]s WHERE %s ORDER BY %s LIMIT %s",
		d.document, b.driver, strings.Join(b.conds, " AND "), order, b.arg(q.Limit))
	return stmt, b.args, nil
}

// explainNamed returns the database's plan for stmt, whose {index:…}
// tokens name indexes of coll's table.
func (t *Tables) explainNamed(ctx context.Context, coll, stmt string, args []any) (string, error) {
	table, err := t.table(ctx, coll)
	if err != nil {
		return "", err
	}
	return t.explain(ctx, coll, indexToken(stmt, table), args...)
}

// ExplainWalk returns the database's plan for the walk a substring search
// starts with (see findByWalk); on PostgreSQL that of its records' read,
// with a bound that passes every id.
func (t *Tables) ExplainWalk(ctx context.Context, coll string, fields Fields, q models.Query, index string) (string, error) {
	if !t.dialect.sqlite {
		stmt, args, err := t.dialect.termsWalkOfRecords(fields, q, unbounded(q))
		if err != nil {
			return "", err
		}
		table, err := t.table(ctx, coll)
		if err != nil {
			return "", err
		}
		return t.explainPlanned(ctx, coll, indexToken(stmt, table), walkPlanner(), args)
	}
	stmt, args, err := t.dialect.walkOf(fields, q, index, q.Limit*walkedPerRecord)
	if err != nil {
		return "", err
	}
	return t.explainNamed(ctx, coll, stmt, args)
}

// ExplainFind returns the database's plan for Find, so that tests can check
// that a query reads an index rather than the whole table.
func (t *Tables) ExplainFind(ctx context.Context, coll string, fields Fields, q models.Query, hints Hints) (string, error) {
	if searchesText(fields, q) {
		hints.Page = "" // the statement after a walk (see ExplainWalk) that did not fill the page
	}
	stmt, args, err := t.withFunctions().selectOf(fields, q, hints)
	if err != nil {
		return "", err
	}
	table, err := t.table(ctx, coll)
	if err != nil {
		return "", err
	}
	return t.explainPlanned(ctx, coll, indexToken(stmt, table), t.dialect.streamPlanner(q), args)
}

// ExplainFindCount returns SQLite's plan for a count of what q's statement
// (without hints) selects: a plan that reads a covering index tests every
// condition on the index's entries, and reads no record to test one.
func (t *Tables) ExplainFindCount(ctx context.Context, coll string, fields Fields, q models.Query) (string, error) {
	q.Limit = 0
	stmt, args, err := t.dialect.selectOf(fields, q, Hints{})
	if err != nil {
		return "", err
	}
	_, rest, ok := strings.Cut(stmt, " FROM ")
	if !ok {
		return "", fmt.Errorf("not a statement of documents: %s", stmt)
	}
	rest, _, _ = strings.Cut(rest, " ORDER BY ")
	table, err := t.table(ctx, coll)
	if err != nil {
		return "", err
	}
	return t.explain(ctx, coll, indexToken("SELECT count(*) FROM "+rest, table), args...)
}

// streamPlanner is the plans PostgreSQL's planner may not choose for q (see
// eachPlanned): for a stream of every record q selects (an export, no
// limit), a sort. The records come in q's order from an index instead, as
// they are read: sorted, a tenant's customers were all read, converted to
// text and written to disk before the first was sent (a sort of 160 MB for
// 30,000 customers, 1.7 s, where the planner's estimate of the tenant's
// size was 150 records). SQLite reads in an index's order by itself.
func (d dialect) streamPlanner(q models.Query) []string {
	if d.sqlite || q.Limit > 0 {
		return nil
	}
	return []string{"sort"}
}

// sqlBuilder collects the conditions and parameters of one statement.
type sqlBuilder struct {
	d      dialect
	tenant string
	// driver is the subquery of ids the statement starts from, if any.
	driver string
	// scopeUnindexed tests what the actor may see on the entries of the
	// index the statement reads, rather than seeking by it (a tally).
	scopeUnindexed bool
	// flags are Hints.Flags.
	flags map[string]string
	// exactSearch tests a substring search on the record alone, without
	// the index of the searched text (a walk of the list, see walkOf).
	exactSearch bool
	// seek, when set, is the dialect of range conditions: those an index on
	// the stored column serves, where d reads from a record (a tally on
	// PostgreSQL).
	seek   *dialect
	fields Fields
	conds  []string
	args   []any
}

func (b *sqlBuilder) arg(v any) string {
	b.args = append(b.args, v)
	return b.d.param(len(b.args))
}

// where collects the conditions of q: its tenant, live records unless it
// asks for deleted ones too, what the actor may see, and its Conds.
func (b *sqlBuilder) where(q models.Query) error {
	b.conds = append(b.conds, b.d.tenant+" = "+b.arg(q.Tenant))
	if !q.WithDeleted {
		b.conds = append(b.conds, b.d.path("deleted_at")+" IS NULL")
	}
	if vis, err := b.visibility(q.Scope, q.OrAssignee); err != nil {
		return err
	} else if vis != "" {
		b.conds = append(b.conds, vis)
	}
	for _, c := range q.Conds {
		cond, err := b.cond(c)
		if err != nil {
			return err
		}
		b.conds = append(b.conds, cond)
	}
	return nil
}

// selectOf is the statement of q (with %s for the table) and its parameters.
// With an index, on SQLite, the statement starts from the ids of the page
// (see pageIDs).
func (d dialect) selectOf(fields Fields, q models.Query, hints Hints) (string, []any, error) {
	b := &sqlBuilder{d: d, fields: fields, tenant: q.Tenant, flags: hints.Flags}
	if err := b.where(q); err != nil {
		return "", nil, err
	}
	order, err := b.order(q)
	if err != nil {
		return "", nil, err
	}
	if d.sqlite && hints.Page != "" && q.Limit > 0 && b.driver == "" {
		return d.pageOf(fields, q, hints.Page)
	}
	from := "%[1]s"
	if b.driver != "" {
		from = "(" + b.driver + ") AS m CROSS JOIN %[1]s"
	}
	document := d.document
	if q.Limit > 0 && d.pageDocument != "" {
		document = d.pageDocument + "(" + d.column + ")" // after the sort (see pgfunctions.go)
	}
	stmt := fmt.Sprintf("SELECT %s FROM %s WHERE %s ORDER BY %s", document, from, strings.Join(b.conds, " AND "), order)
	if q.Limit > 0 {
		stmt += " LIMIT " + b.arg(q.Limit)
	}
	return stmt, b.args, nil
}

// pageOf is the statement of q's page read through pageIDs: the ids first,
// then each record by its tenant and id alone. The conditions were tested on
// the index's entries; tested again here, they would let SQLite read the
// records through their indexes instead (its choice when its statistics are
// stale: a month of 200,000 interactions read once per row of the page).
func (d dialect) pageOf(fields Fields, q models.Query, index string) (string, []any, error) {
	ids, args, err := d.pageIDs(fields, q, index, nil)
	if err != nil {
		return "", nil, err
	}
	return d.recordsOf(fields, q, ids, args)
}

// pageIDs is the statement of the ids of q's page, in order, read from the
// entries of index alone: every condition of q is tested on them, then they
// are sorted, and the page's records are then read by id (see pageOf). SQLite, left to itself with a range such
// as a month of interactions listed by id, reads every record of the range
// to test and sort them. Its parameters continue args.
func (d dialect) pageIDs(fields Fields, q models.Query, index string, args []any) (string, []any, error) {
	return d.entryIDs(fields, q, entries{index: index}, args)
}

// entries says where entryIDs reads: the entries of index, alone or each
// sought by the id match names in the subquery from joins before them
// (from then names the index too); unordered leaves the ids unsorted and
// unlimited, for a count.
type entries struct {
	from, index, match string
	unordered          bool
}

// entryIDs is pageIDs, reading the entries e says.
func (d dialect) entryIDs(fields Fields, q models.Query, e entries, args []any) (string, []any, error) {
	b := &sqlBuilder{d: d, fields: fields, tenant: q.Tenant, scopeUnindexed: true, args: args}
	if err := b.where(q); err != nil {
		return "", nil, err
	}
	id := d.value("_id", Text)
	from := "%[1]s"
	if d.sqlite {
		from += " INDEXED BY {index:" + e.index + "}"
	}
	if e.match != "" {
		from = e.from
		b.conds = append(b.conds, id+" = "+e.match)
	}
	order, err := b.order(q)
	if err != nil {
		return "", nil, err
	}
	if b.driver != "" {
		return "", nil, fmt.Errorf("%w: a page of %s read from its index reads a side table too", ErrUntranslatable, e.index)
	}
	stmt := fmt.Sprintf("SELECT %s AS id FROM %s WHERE %s", id, from, strings.Join(b.conds, " AND "))
	if e.unordered {
		return stmt, b.args, nil
	}
	return fmt.Sprintf("%s ORDER BY %s LIMIT %s", stmt, order, b.arg(q.Limit)), b.args, nil
}

// visibility is the SQL of what an actor may see ("" for everything).
func (b *sqlBuilder) visibility(sc models.Scope, orAssignee string) (string, error) {
	if sc.All {
		return "", nil
	}
	var or []string
	in := func(field string, values []string) error {
		c, err := b.cond(models.Cond{Field: field, Op: models.OpIn, Value: values})
		if b.scopeUnindexed && b.d.sqlite {
			// A unary + keeps SQLite from reading the OR's terms through
			// an index each (and then every record they name).
			c = "+" + c
		}
		or = append(or, c)
		return err
	}
	if len(sc.OwnerIDs) > 0 {
		if err := in("owner_id", sc.OwnerIDs); err != nil {
			return "", err
		}
	}
	if len(sc.TeamIDs) > 0 {
		if err := in("team_id", sc.TeamIDs); err != nil {
			return "", err
		}
	}
	if sc.Pool {
		if err := in("owner_id", []string{""}); err != nil {
			return "", err
		}
	}
	if orAssignee != "" {
		if err := in("assignee_id", []string{orAssignee}); err != nil {
			return "", err
		}
	}
	if len(or) == 0 {
		return "FALSE", nil // sees nothing
	}
	return "(" + strings.Join(or, " OR ") + ")", nil
}

// kind is the kind of field, _id and tenant_id included.
func (b *sqlBuilder) kind(field string) (Kind, error) {
	if field == "_id" || field == "tenant_id" {
		return Text, nil
	}
	k, ok := b.fields[field]
	if !ok {
		return 0, fmt.Errorf("%w: field %q", ErrUntranslatable, field)
	}
	return k, nil
}

// cond is the SQL of one condition.
func (b *sqlBuilder) cond(c models.Cond) (string, error) {
	k, err := b.kind(c.Field)
	if err != nil {
		return "", err
	}
	if k.isList() {
		cond, err := b.listCond(c, k)
		if err == nil && (k == Terms || k == SearchTerms) {
			cond = b.d.selective(cond)
		}
		return cond, err
	}
	e := b.d.value(c.Field, k)
	switch c.Op {
	case models.OpMissing:
		return e + " IS NULL", nil
	case models.OpEq, models.OpNe:
		if c.Value == nil {
			if c.Op == models.OpEq {
				return e + " IS NULL", nil
			}
			if k == Object && b.d.sqlite {
				// A flag such as a customer's duplicate mark, set on few:
				// start from the index of it.
				from, set := "%[1]s", e+" IS NOT NULL"
				if name := b.flags[c.Field]; name != "" {
					// A flag's object is JSON text here: ">= ''" holds for
					// every one and, unlike IS NOT NULL, seeks the index
					// past the records without it.
					from, set = from+" INDEXED BY {index:"+name+"}", e+" >= ''"
				}
				return b.drive(fmt.Sprintf("SELECT %s AS id FROM %s WHERE %s = %s AND %s",
					b.d.value("_id", Text), from, b.d.tenant, b.arg(b.tenant), set)), nil
			}
			return e + " IS NOT NULL", nil
		}
		v, err := b.scalar(c.Value, k)
		if err != nil {
			return "", err
		}
		if c.Op == models.OpEq {
			return e + " = " + b.arg(v), nil
		}
		// MongoDB's $ne also matches a record without the field.
		return "(" + e + " IS NULL OR " + e + " <> " + b.arg(v) + ")", nil
	case models.OpIn:
		values, err := b.list(c.Value, k)
		if err != nil {
			return "", err
		}
		if len(values) == 0 {
			return "FALSE", nil
		}
		ps := make([]string, len(values))
		for i, v := range values {
			ps[i] = b.arg(v)
		}
		return e + " IN (" + strings.Join(ps, ", ") + ")", nil
	case models.OpGt, models.OpGte, models.OpLt, models.OpLte:
		v, err := b.scalar(c.Value, k)
		if err != nil {
			return "", err
		}
		if b.seek != nil {
			e = b.seek.value(c.Field, k)
		}
		return e + " " + comparisons[c.Op] + " " + b.arg(v), nil
	case models.OpContains:
		pattern, err := likePattern(c.Value, k)
		if err != nil {
			return "", err
		}
		if k == SearchText && b.exactSearch && b.d.sqlite && b.driver != "" {
			// A walk (walkOf, whose ids are m) tests each record it
			// passes on the text the search table keeps of it, found by
			// the record's id, rather than on the record, whose whole JSON
			// SQLite parsed to read the one field (seven tenths of a
			// content search at 100,000 interactions).
			return fmt.Sprintf(`EXISTS (SELECT 1 FROM {rows} AS r CROSS JOIN {fts:%s} AS f WHERE r.id = m.id AND f.rowid = r.n AND f.items %s %s ESCAPE '\')`,
				c.Field, b.d.like, b.arg(pattern)), nil
		}
		exact := e + " " + b.d.like + " " + b.arg(pattern) + ` ESCAPE '\'`
		if k != SearchText || b.exactSearch {
			return exact, nil
		}
		needle, _ := c.Value.(string)
		if !b.d.sqlite {
			// pg_trgm's index is on the text under the database's
			// collation; the C collation's ILIKE then decides, as on SQLite.
			return fmt.Sprintf(`(%s ILIKE %s ESCAPE '\' AND %s)`, b.d.path(c.Field), b.arg(pattern), exact), nil
		}
		if strings.ContainsAny(needle, "%_") {
			return exact, nil // FTS5 takes LIKE without ESCAPE only
		}
		return fmt.Sprintf("(%s AND %s)", b.drive(fmt.Sprintf(
			"SELECT r.id FROM {fts:%s} AS f JOIN {rows} AS r ON r.n = f.rowid WHERE f.items LIKE %s AND r.tenant = %s",
			c.Field, b.arg("%"+needle+"%"), b.arg(b.tenant))), exact), nil
	}
	return "", fmt.Errorf("%w: operator %s", ErrUntranslatable, c.Op)
}

var comparisons = map[models.Op]string{models.OpGt: ">", models.OpGte: ">=", models.OpLt: "<", models.OpLte: "<="}

// listCond is a condition on an array of strings: equality means the array
// holds the value, as in MongoDB. With an index of the items (Terms), the
// records are found through it; the condition on the document itself stays
// and decides.
func (b *sqlBuilder) listCond(c models.Cond, k Kind) (string, error) {
	d := b.d
	id := d.value("_id", Text)
	switch c.Op {
	case models.OpEq:
		s, ok := c.Value.(string)
		if !ok {
			return "", fmt.Errorf("%w: %s = %T", ErrUntranslatable, c.Field, c.Value)
		}
		if !d.sqlite {
			// jsonb containment, which the GIN index on the array answers.
			return fmt.Sprintf("(%s->'%s') @> jsonb_build_array(%s::text)", d.column, c.Field, b.arg(s)), nil
		}
		if k == TextList {
			return fmt.Sprintf("EXISTS (SELECT 1 FROM json_each(%s, '$.%s') WHERE value = %s)", d.document, c.Field, b.arg(s)), nil
		}
		ids := fmt.Sprintf("SELECT id FROM {terms} WHERE tenant = %s AND field = '%s' AND term = %s", b.arg(b.tenant), c.Field, b.arg(s))
		if k == SearchTerms {
			return b.drive(ids), nil // an exact phone, e-mail or number: a few records
		}
		return id + " IN (" + ids + ")", nil
	case models.OpContains:
		needle, ok := c.Value.(string)
		if !ok {
			return "", fmt.Errorf("%w: contains %T", ErrUntranslatable, c.Value)
		}
		if k == SearchTerms {
			return b.searchCond(c.Field, strings.ToLower(needle)), nil
		}
		pattern, err := likePattern(needle, Text)
		if err != nil {
			return "", err
		}
		if d.sqlite {
			return fmt.Sprintf(`EXISTS (SELECT 1 FROM json_each(%s, '$.%s') WHERE value LIKE %s ESCAPE '\')`, d.document, c.Field, b.arg(pattern)), nil
		}
		return fmt.Sprintf(`EXISTS (SELECT 1 FROM jsonb_array_elements_text(%s->'%s') AS item WHERE item COLLATE "C" ILIKE %s ESCAPE '\')`, d.column, c.Field, b.arg(pattern)), nil
	}
	return "", fmt.Errorf("%w: %s on the list %s", ErrUntranslatable, c.Op, c.Field)
}

// drive makes the records ids selects (a subquery of a side table) where
// SQLite starts: the first such subquery is joined first (CROSS JOIN fixes
// the order), and the records it names are read by id; a later one is a
// plain IN. Without it SQLite tends to walk the whole list in order and
// test each record, which a search matching a handful of 100,000 makes a scan.
func (b *sqlBuilder) drive(ids string) string {
	id := b.d.value("_id", Text)
	if b.driver != "" {
		return id + " IN (" + ids + ")"
	}
	b.driver = ids
	return id + " = +m.id"
}

// searchCond finds the records with an item of a SearchTerms field that
// holds needle. Such items are stored in lower case, and searches are
// lowered the same way, so the match is an exact substring: the index
// (FTS5 trigrams on SQLite, pg_trgm on PostgreSQL) finds the candidates and
// the condition on the document decides.
func (b *sqlBuilder) searchCond(field, needle string) string {
	d := b.d
	if d.sqlite && b.exactSearch {
		return fmt.Sprintf("EXISTS (SELECT 1 FROM json_each(%s, '$.%s') WHERE instr(value, %s) > 0)", d.document, field, b.arg(needle))
	}
	if d.sqlite {
		return fmt.Sprintf("(%s AND EXISTS (SELECT 1 FROM json_each(%s, '$.%s') WHERE instr(value, %s) > 0))",
			b.drive(b.candidateIDs(field, needle)), d.document, field, b.arg(needle))
	}
	exact := fmt.Sprintf("EXISTS (SELECT 1 FROM jsonb_array_elements_text(%s->'%s') AS item WHERE strpos(item, %s) > 0)", d.column, field, b.arg(needle))
	if d.shortGrams != "" && shortNeedle(needle) {
		// The index of the items' short substrings (see pgfunctions.go).
		return fmt.Sprintf("(%s(%s->'%s') @> ARRAY[%s::text] AND %s)", d.shortGrams, d.column, field, b.arg(needle), exact)
	}
	if strings.ContainsAny(needle, `"\`) || hasControl(needle) {
		return exact // JSON text escapes these: the index of that text cannot find them
	}
	like := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(needle)
	return fmt.Sprintf("((%s->'%s')::text LIKE %s AND %s)", d.column, field, b.arg("%"+like+"%"), exact)
}

// candidateIDs is the statement of the ids of the tenant's records whose
// items of field may hold needle, on SQLite: from the grams side table for
// a needle of one or two characters past ASCII, which it names exactly,
// from the trigram search table otherwise (FTS5 reads its whole table for
// a needle shorter than a trigram).
func (b *sqlBuilder) candidateIDs(field, needle string) string {
	if gramNeedle(needle) {
		return fmt.Sprintf("SELECT r.id FROM {grams} AS g JOIN {rows} AS r ON r.n = g.n WHERE g.tenant = %s AND g.field = '%s' AND g.gram = %s",
			b.arg(b.tenant), field, b.arg(needle))
	}
	glob := strings.NewReplacer("*", "[*]", "?", "[?]", "[", "[[]").Replace(needle)
	return fmt.Sprintf("SELECT r.id FROM {fts:%s} AS f JOIN {rows} AS r ON r.n = f.rowid WHERE f.items GLOB %s AND r.tenant = %s",
		field, b.arg("*"+glob+"*"), b.arg(b.tenant))
}

func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
}

// likePattern is the LIKE pattern of a case-insensitive substring. Both
// engines fold case in ASCII only (SQLite's LIKE; ILIKE under the C
// collation), so text with other letters that have a case is left to
// FerretDB, whose regular expressions fold all of Unicode.
func likePattern(v any, k Kind) (string, error) {
	s, ok := v.(string)
	if !ok || !k.isText() {
		return "", fmt.Errorf("%w: contains on a %T", ErrUntranslatable, v)
	}
	for _, r := range s {
		if r > unicode.MaxASCII && unicode.SimpleFold(r) != r {
			return "", fmt.Errorf("%w: non-ASCII letters with case in %q", ErrUntranslatable, s)
		}
	}
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(s) + "%", nil
}

// scalar converts a condition's value to the SQL parameter of a field of kind k.
func (b *sqlBuilder) scalar(v any, k Kind) (any, error) {
	switch x := v.(type) {
	case string:
		if k.isText() {
			return x, nil
		}
	case time.Time:
		if k == Time {
			return x.UnixMilli(), nil
		}
	case int:
		if k == Number {
			return int64(x), nil
		}
	case int64:
		if k == Number {
			return x, nil
		}
	case float64:
		if k == Number {
			return x, nil
		}
	}
	return nil, fmt.Errorf("%w: a %T for a field of kind %d", ErrUntranslatable, v, k)
}

func (b *sqlBuilder) list(v any, k Kind) ([]any, error) {
	var items []any
	switch x := v.(type) {
	case []string:
		for _, s := range x {
			items = append(items, s)
		}
	case []any:
		items = x
	default:
		return nil, fmt.Errorf("%w: $in with a %T", ErrUntranslatable, v)
	}
	out := make([]any, len(items))
	for i, item := range items {
		s, err := b.scalar(item, k)
		if err != nil {
			return nil, err
		}
		out[i] = s
	}
	return out, nil
}

// order adds the condition of q.After and returns the ORDER BY clause. A
// record without the sort field sorts first ascending and last descending,
// as in MongoDB, and paging continues through such records.
func (b *sqlBuilder) order(q models.Query) (string, error) {
	id := b.d.value("_id", Text)
	cmp, dir := ">", "ASC"
	if q.Desc {
		cmp, dir = "<", "DESC"
	}
	if q.SortField == "" || q.SortField == "_id" {
		if q.After != nil {
			b.conds = append(b.conds, id+" "+cmp+" "+b.arg(q.After.ID))
		}
		return id + " " + dir, nil
	}
	k, err := b.kind(q.SortField)
	if err != nil {
		return "", err
	}
	if k.isList() || k == Object {
		return "", fmt.Errorf("%w: sort by %s", ErrUntranslatable, q.SortField)
	}
	e := b.d.value(q.SortField, k)
	if q.After != nil {
		idArg := b.arg(q.After.ID)
		switch {
		case q.After.Value == nil && !q.Desc:
			b.conds = append(b.conds, fmt.Sprintf("((%s IS NULL AND %s > %s) OR %s IS NOT NULL)", e, id, idArg, e))
		case q.After.Value == nil:
			b.conds = append(b.conds, fmt.Sprintf("(%s IS NULL AND %s < %s)", e, id, idArg))
		default:
			v, err := b.scalar(q.After.Value, k)
			if err != nil {
				return "", err
			}
			vArg := b.arg(v)
			after := fmt.Sprintf("%s %s %s OR (%s = %s AND %s %s %s)", e, cmp, vArg, e, vArg, id, cmp, idArg)
			if q.Desc {
				after += " OR " + e + " IS NULL"
			}
			b.conds = append(b.conds, "("+after+")")
		}
	}
	return b.d.orderBy(e, q.Desc) + ", " + id + " " + dir, nil
}

// selective tells SQLite's planner that cond holds for few records, so that
// it reads them through their index rather than walking the whole list in
// order and testing each (its choice when it has no better estimate).
// PostgreSQL estimates from its own statistics.
func (d dialect) selective(cond string) string {
	if d.sqlite {
		return "likelihood(" + cond + ", 0.001)"
	}
	return cond
}

// path is the SQL expression of a (possibly dotted) field as SQL text or
// number, NULL when the field is missing or null.
func (d dialect) path(name string) string {
	if d.sqlite {
		return `(_ferretdb_sjson->>'$.` + name + `')`
	}
	if d.columns {
		return quoteIdent(name)
	}
	if d.record != "" {
		top, rest, _ := strings.Cut(name, ".")
		return `(` + d.record + `.` + quoteIdent(top) + `#>>'{` + strings.ReplaceAll(rest, ".", ",") + `}')`
	}
	return `(_jsonb#>>'{` + strings.ReplaceAll(name, ".", ",") + `}')`
}

// value is the expression of field name of kind k, as queries compare and
// indexes store it. On PostgreSQL text compares under the C collation
// (bytewise, as MongoDB compares strings) and dates as numbers.
func (d dialect) value(name string, k Kind) string {
	if name == "tenant_id" {
		return d.tenant
	}
	p := d.path(name)
	if d.sqlite || d.columns {
		return p // a column holds its kind's type (see tallyColumn)
	}
	switch k {
	case Text, SearchText:
		return "(" + p + ` COLLATE "C")`
	case Time:
		return "(" + p + "::bigint)"
	case Number:
		return "(" + p + "::numeric)"
	}
	return p
}

// orderBy sorts by e with missing values first ascending and last
// descending, as MongoDB does (SQLite's default; PostgreSQL's is the other way).
func (d dialect) orderBy(e string, desc bool) string {
	switch {
	case d.sqlite && desc:
		return e + " DESC"
	case d.sqlite:
		return e + " ASC"
	case desc:
		return e + " DESC NULLS LAST"
	}
	return e + " ASC NULLS FIRST"
}

// indexed is the index expression of field, matching value and orderBy.
func (d dialect) indexed(field string, fields Fields) (string, error) {
	switch field {
	case "tenant_id":
		return d.tenant, nil
	case "_id":
		return d.value("_id", Text), nil
	}
	k, ok := fields[field]
	if !ok {
		return "", fmt.Errorf("no kind for field %q", field)
	}
	if d.sqlite {
		return d.value(field, k), nil
	}
	return d.orderBy(d.value(field, k), false), nil
}

// Analyze refreshes the statistics SQLite's planner chooses indexes by:
// whether walking a list in order or reading a filter's index first is
// cheaper depends on how many records hold the value or fall in the range
// (SQLite keeps samples of each index, STAT4; a sampling limit would leave
// those out). A whole ANALYZE reads every index: about 1.6 s at 20,000
// customers and 100,000 interactions. Start-up and the checkpointer run
// PRAGMA optimize instead, which analyzes only the tables that changed
// much.
//
// On PostgreSQL it analyzes every table of the database's schema, and
// vacuums the side tables.
// Autovacuum keeps statistics as tables change, where it runs; but a bulk
// load is read at once, before its next round (a tenant of 100,000
// customers never analyzed: a list page read all of them, 4.7 s), and a
// server with autovacuum off never has them.
func (t *Tables) Analyze(ctx context.Context) error {
	if t.dialect.sqlite {
		return t.sqliteStatistics(ctx, "ANALYZE")
	}
	rows, err := t.db.QueryContext(ctx, "SELECT tablename FROM pg_tables WHERE schemaname = $1", t.schema)
	if err != nil {
		return fmt.Errorf("list the tables to analyze: %w", err)
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return fmt.Errorf("list the tables to analyze: %w", err)
		}
		tables = append(tables, name)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("list the tables to analyze: %w", err)
	}
	for _, table := range tables {
		stmt := "ANALYZE "
		if strings.HasSuffix(table, tallySuffix) || strings.HasSuffix(table, "_fieldcrm_moves") {
			// The side tables are read from their indexes' entries alone
			// (index-only scans) once the visibility map says their pages
			// hold no row a reader may not see; VACUUM sets it, which
			// autovacuum, where it runs, does later. A narrow table:
			// about half a second at 500,000 interactions.
			stmt = "VACUUM (ANALYZE) "
		}
		if _, err := t.db.ExecContext(ctx, stmt+t.dialect.qualify(table)); err != nil {
			return fmt.Errorf("analyze %s: %w", table, err)
		}
	}
	return nil
}

// sqliteStatistics runs stmt (ANALYZE or a PRAGMA optimize) on a writable
// connection of its own.
func (t *Tables) sqliteStatistics(ctx context.Context, stmt string) error {
	if !t.dialect.sqlite {
		return nil
	}
	w, err := sql.Open("sqlite", "file:"+t.sqlitePath+"?mode=rw&_pragma=busy_timeout(10000)")
	if err != nil {
		return fmt.Errorf("open %s for statistics: %w", t.sqlitePath, err)
	}
	defer w.Close()
	w.SetMaxOpenConns(1)
	if _, err := w.ExecContext(ctx, stmt); err != nil {
		return fmt.Errorf("refresh planner statistics: %w", err)
	}
	return reloadStatistics(ctx, w)
}

// reloadStatistics has every connection to the database load the planner's
// statistics again. Each loads them with the schema and keeps them until
// the schema changes: the readers, open since start-up, planned with the
// statistics of empty tables after a bulk load (a month of 200,000
// interactions read its index once per row of the page, 36 s). A change of
// the schema (a table made and dropped) makes each read it again, with
// them, before its next statement.
func reloadStatistics(ctx context.Context, db execer) error {
	for _, ddl := range []string{"CREATE TABLE IF NOT EXISTS fieldcrm_statistics_refreshed (at INTEGER)", "DROP TABLE IF EXISTS fieldcrm_statistics_refreshed"} {
		if _, err := db.ExecContext(ctx, ddl); err != nil {
			return fmt.Errorf("have the readers load the new statistics: %w", err)
		}
	}
	return nil
}
