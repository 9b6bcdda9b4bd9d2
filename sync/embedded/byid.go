package embedded

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/bson"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/fieldcrm/fieldcrm/models"
)

// Reads and writes of one document by _id, on SQLite only.
//
// Why: each goes through FerretDB's wire protocol, its generic document
// machinery and a transaction of its own: 0.4 to 1.6 ms per operation on this
// class of machine, so an offline edit (read, version claim, write) cost about
// 5 ms and a push of 500 edits 2.5 s. The same statements sent straight to
// SQLite take 0.05 to 0.25 ms. They are the statements FerretDB itself runs
// for these operations (same table, same column, same _id expression), with
// the document in the stored form FerretDB reads back (bsonToSJSON), so the
// two writers can share the tables: SQLite serializes them, and the unique
// _id index FerretDB created still makes an insert of an existing _id fail,
// which is what version claims rely on.
//
// Anything these methods do not handle (a collection FerretDB has not created
// yet, a value of a type fieldcrm never stores) returns an error matching
// errors.ErrUnsupported, and the caller goes through FerretDB instead.

// ByID reports whether Get, Insert, Replace and Delete are available: on
// SQLite, not on PostgreSQL, where FerretDB already pushes _id filters down.
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
		q := fmt.Sprintf(`SELECT _ferretdb_sjson FROM %s WHERE %s = ?`, quoteIdent(table), idExpression)
		return t.db.QueryRowContext(ctx, q, arg).Scan(&text)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, models.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get %s %s: %w", coll, id, err)
	}
	return sjsonToBSON(text)
}

// DocWrite is one write of Write: an insert of a new document, or with
// Replace, a write over the document with the same _id.
type DocWrite struct {
	Coll    string
	Doc     bson.Raw
	Replace bool
}

// Write makes the writes in one SQLite transaction: all of them or none. An
// insert of an existing _id, or a replace of a missing one, fails it with
// models.ErrConflict. One transaction is also one sync to disk, where a write
// through FerretDB costs one per document.
func (t *Tables) Write(ctx context.Context, writes ...DocWrite) error {
	type prepared struct {
		table, text, id string
		replace         bool
	}
	ops := make([]prepared, len(writes))
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
		ops[i].text, ops[i].replace = text, w.Replace
	}
	err := t.inTransaction(ctx, func(tx *sql.Tx) error {
		for i, op := range ops {
			if !op.replace {
				if _, err := tx.ExecContext(ctx, fmt.Sprintf(`INSERT INTO %s (_ferretdb_sjson) VALUES (?)`, quoteIdent(op.table)), op.text); err != nil {
					return fmt.Errorf("insert into %s: %w", writes[i].Coll, err)
				}
				continue
			}
			res, err := tx.ExecContext(ctx,
				fmt.Sprintf(`UPDATE %s SET _ferretdb_sjson = ? WHERE %s = ?`, quoteIdent(op.table), idExpression), op.text, op.id)
			if err != nil {
				return fmt.Errorf("replace %s %s: %w", writes[i].Coll, op.id, err)
			}
			if n, err := res.RowsAffected(); err != nil || n == 0 {
				return fmt.Errorf("replace %s %s: no such document: %w", writes[i].Coll, op.id, models.ErrConflict)
			}
		}
		return nil
	})
	if isMissingTable(err) {
		t.forget() // a dropped collection: the next call looks tables up again
	}
	var se *sqlite.Error
	if errors.As(err, &se) && (se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY) {
		return fmt.Errorf("%w: %w", models.ErrConflict, err)
	}
	return err
}

func (t *Tables) inTransaction(ctx context.Context, f func(tx *sql.Tx) error) error {
	tx, err := t.writer.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := f(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
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
		_, err := t.writer.ExecContext(ctx, fmt.Sprintf(`DELETE FROM %s WHERE %s = ?`, quoteIdent(table), idExpression), arg)
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
