package embedded

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"go.mongodb.org/mongo-driver/bson"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/fieldcrm/fieldcrm/models"
)

// Reads and writes of documents by _id.
//
// Why: on SQLite each goes through FerretDB's wire protocol, its generic
// document machinery and a transaction of its own: 0.4 to 1.6 ms per
// operation on this class of machine, so an offline edit (read, version claim,
// write) cost about 5 ms and a push of 500 edits 2.5 s; the same statements
// sent straight to SQLite take 0.05 to 0.25 ms. On PostgreSQL, FerretDB looks
// a document up by _id with "_jsonb->'_id' @> $1", which its own _id index
// cannot serve, so every read by id scans the collection (8 ms at 2,000
// customers, about 90 ms at 20,000). The statements here use the expression
// FerretDB's unique _id index is built on, in the stored form FerretDB reads
// back (bsonToSJSON), so the two writers share the tables: the database
// serializes them, and the unique index still makes an insert of an existing
// _id fail, which is what version claims rely on.
//
// Anything these methods do not handle (a collection FerretDB has not created
// yet, a value of a type fieldcrm never stores) returns an error matching
// errors.ErrUnsupported, and the caller goes through FerretDB instead.

// ByID reports whether Get, Write and Delete are available (on both engines).
func (t *Tables) ByID() bool { return t.writer != nil }

// idArg is the SQL argument that matches the _id expression: its JSON text.
func idArg(id string) (string, error) {
	b, err := json.Marshal(id)
	return string(b), err
}

// Get returns the document of coll with _id id, or models.ErrNotFound.
func (t *Tables) Get(ctx context.Context, coll, id string) (bson.Raw, error) {
	arg, err := idArg(id)
	if err != nil {
		return nil, err
	}
	var text []byte
	err = t.retry(ctx, coll, func(table string) error {
		if table == "" {
			return sql.ErrNoRows
		}
		d := t.dialect
		q := fmt.Sprintf(`SELECT %s FROM %s WHERE %s = %s`, d.document, d.qualify(table), d.id, d.jsonParam(1))
		if t.readPipe != nil {
			var err error
			text, err = t.readPipe.read(ctx, q, arg)
			return err
		}
		stmt, err := t.reads.get(ctx, q)
		if err != nil {
			return err
		}
		return stmt.QueryRowContext(ctx, arg).Scan(&text)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, models.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get %s %s: %w", coll, id, err)
	}
	return sjsonToBSON(text, t.schemas)
}

// DocWrite is one write of Write: an insert of a new document, or with
// Replace, a write over the document with the same _id.
type DocWrite struct {
	Coll    string
	Doc     bson.Raw
	Replace bool
}

// Write makes the writes in one transaction: all of them or none. An insert
// of an existing _id, or a replace of a missing one, fails it with
// models.ErrConflict. One transaction is also one sync to disk, where a write
// through FerretDB costs one per document, and writes of callers writing at
// the same moment share one (see groupcommit.go and pgpipeline.go).
func (t *Tables) Write(ctx context.Context, writes ...DocWrite) error {
	ops := make([]preparedWrite, len(writes))
	for i, w := range writes {
		text, err := stored(w.Doc)
		if err != nil {
			return err
		}
		id, ok := w.Doc.Lookup("_id").StringValueOK()
		if !ok {
			return fmt.Errorf("%s: _id is not a string: %w", w.Coll, errors.ErrUnsupported)
		}
		if ops[i].id, err = idArg(id); err != nil {
			return err
		}
		if ops[i].table, err = t.table(ctx, w.Coll); err != nil {
			return err
		}
		if ops[i].table == "" {
			return fmt.Errorf("collection %s does not exist yet: %w", w.Coll, errors.ErrUnsupported)
		}
		ops[i].coll, ops[i].text, ops[i].replace = w.Coll, text, w.Replace
		ops[i].sql = t.writeSQL(ops[i])
		if t.writes == nil {
			continue // PostgreSQL: pgx keeps the pipeline's statements prepared
		}
		// Prepared here, before any transaction: on SQLite the writer pool
		// has one connection, which the transaction holds.
		if ops[i].stmt, err = t.writes.get(ctx, ops[i].sql); err != nil {
			if isMissingTable(err) {
				t.forget() // a dropped collection: the next call looks tables up again
			}
			return err
		}
	}
	err := t.group.write(ctx, ops)
	if isMissingTable(err) {
		t.forget() // a dropped collection: the next call looks tables up again
	}
	if isDuplicate(err) {
		return fmt.Errorf("%w: %w", models.ErrConflict, err)
	}
	return err
}

// preparedWrite is a DocWrite in SQL terms.
type preparedWrite struct {
	coll, table, text, id string
	replace               bool
	sql                   string    // writeSQL
	stmt                  *sql.Stmt // sql prepared on the writer (SQLite)
}

// writeSQL is the statement of op: an insert, or a replace by _id.
func (t *Tables) writeSQL(op preparedWrite) string {
	d := t.dialect
	if !op.replace {
		return fmt.Sprintf(`INSERT INTO %s (%s) VALUES (%s)`, d.qualify(op.table), d.column, d.jsonParam(1))
	}
	return fmt.Sprintf(`UPDATE %s SET %s = %s WHERE %s = %s`, d.qualify(op.table), d.column, d.jsonParam(1), d.id, d.jsonParam(2))
}

// insertRowsPerStatement bounds the rows of one multi-row INSERT.
const insertRowsPerStatement = 64

// applyWrites runs ops in tx (SQLite): the inserts first, table by table,
// many rows to a statement, then the replaces in their order.
//
// Why many rows to a statement: each statement that writes a searched
// field's full-text table makes SQLite flush that table's pending terms to
// disk as a new segment (its statement savepoint), and merging those
// segments again took a fifth of the time of seeding customers one
// statement each. Why the inserts may go first: any refusal rolls the whole
// group back and runs each caller's writes alone (groupcommit.go), so only a
// group where every write succeeds commits, and there an insert never
// depends on a replace (a replace needs its document to exist already).
func (t *Tables) applyWrites(ctx context.Context, tx *sql.Tx, ops []preparedWrite) error {
	var tables []string
	inserts := map[string][]preparedWrite{}
	for _, op := range ops {
		if !op.replace {
			if inserts[op.table] == nil {
				tables = append(tables, op.table)
			}
			inserts[op.table] = append(inserts[op.table], op)
		}
	}
	for _, table := range tables {
		rows := inserts[table]
		for len(rows) > 0 {
			n := min(len(rows), insertRowsPerStatement)
			if err := t.insertRows(ctx, tx, rows[:n]); err != nil {
				return err
			}
			rows = rows[n:]
		}
	}
	for _, op := range ops {
		if !op.replace {
			continue
		}
		res, err := tx.StmtContext(ctx, op.stmt).ExecContext(ctx, op.text, op.id)
		if err != nil {
			return fmt.Errorf("replace %s %s: %w", op.coll, op.id, err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return fmt.Errorf("replace %s %s: no such document: %w", op.coll, op.id, models.ErrConflict)
		}
	}
	return nil
}

// insertRows inserts rows, all of one table, in one statement.
func (t *Tables) insertRows(ctx context.Context, tx *sql.Tx, rows []preparedWrite) error {
	if len(rows) == 1 {
		if _, err := tx.StmtContext(ctx, rows[0].stmt).ExecContext(ctx, rows[0].text); err != nil {
			return fmt.Errorf("insert into %s: %w", rows[0].coll, err)
		}
		return nil
	}
	d := t.dialect
	values := strings.Repeat("(?),", len(rows))
	args := make([]any, len(rows))
	for i, r := range rows {
		args[i] = r.text
	}
	stmt := fmt.Sprintf(`INSERT INTO %s (%s) VALUES %s`, d.qualify(rows[0].table), d.column, values[:len(values)-1])
	if _, err := tx.ExecContext(ctx, stmt, args...); err != nil {
		return fmt.Errorf("insert %d documents into %s: %w", len(rows), rows[0].coll, err)
	}
	return nil
}

// isDuplicate tells a unique index refusing an insert, on either engine.
func isDuplicate(err error) bool {
	var se *sqlite.Error
	var pe *pgconn.PgError
	return (errors.As(err, &se) && (se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY)) ||
		(errors.As(err, &pe) && pe.Code == "23505")
}

// Delete removes the document of coll with _id id, if there is one.
func (t *Tables) Delete(ctx context.Context, coll, id string) error {
	arg, err := idArg(id)
	if err != nil {
		return err
	}
	err = t.retry(ctx, coll, func(table string) error {
		if table == "" {
			return nil
		}
		d := t.dialect
		_, err := t.writer.ExecContext(ctx, fmt.Sprintf(`DELETE FROM %s WHERE %s = %s`, d.qualify(table), d.id, d.jsonParam(1)), arg)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete %s %s: %w", coll, id, err)
	}
	return nil
}

// stored converts doc to FerretDB's stored form; what it cannot convert is
// left to FerretDB.
func stored(doc bson.Raw) (string, error) {
	text, err := bsonToSJSON(doc)
	if err != nil {
		return "", fmt.Errorf("%w: %w", errors.ErrUnsupported, err)
	}
	return string(text), nil
}
