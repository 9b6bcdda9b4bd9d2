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

// Insert adds doc to coll; an existing _id gives models.ErrConflict.
func (t *Tables) Insert(ctx context.Context, coll string, doc bson.Raw) error {
	text, err := stored(doc)
	if err != nil {
		return err
	}
	err = t.retry(ctx, coll, func(table string) error {
		if table == "" {
			return fmt.Errorf("collection %s does not exist yet: %w", coll, errors.ErrUnsupported)
		}
		_, err := t.writer.ExecContext(ctx, fmt.Sprintf(`INSERT INTO %s (_ferretdb_sjson) VALUES (?)`, quoteIdent(table)), text)
		return err
	})
	var se *sqlite.Error
	if errors.As(err, &se) && (se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY) {
		return fmt.Errorf("insert into %s: %w", coll, models.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("insert into %s: %w", coll, err)
	}
	return nil
}

// Replace writes doc over the document of coll with _id id and reports
// whether there was one.
func (t *Tables) Replace(ctx context.Context, coll, id string, doc bson.Raw) (bool, error) {
	text, err := stored(doc)
	if err != nil {
		return false, err
	}
	arg, err := idArg(id)
	if err != nil {
		return false, err
	}
	var n int64
	err = t.retry(ctx, coll, func(table string) error {
		if table == "" {
			return nil
		}
		res, err := t.writer.ExecContext(ctx,
			fmt.Sprintf(`UPDATE %s SET _ferretdb_sjson = ? WHERE %s = ?`, quoteIdent(table), idExpression), text, arg)
		if err == nil {
			n, err = res.RowsAffected()
		}
		return err
	})
	if err != nil {
		return false, fmt.Errorf("replace %s %s: %w", coll, id, err)
	}
	return n > 0, nil
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
