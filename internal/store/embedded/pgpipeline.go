package embedded

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/fieldcrm/fieldcrm/models"
)

// Group commit on PostgreSQL: the writes of a group go to the server as one
// pipeline.
//
// Why: each direct write used to be a transaction of its own, BEGIN, one or
// two statements and COMMIT, each a round trip, and each COMMIT a flush of
// the log. In a reminder burst that was three such transactions per
// reminder, and the two cores spent more time in system calls than in
// fieldcrm (a CPU profile: a quarter of the process in write and read calls).
// Grouping the writes statement by statement over database/sql made it worse
// (30,000 reminders: the last pushed 39.3 s after the last due time against
// 14.5 s), because the group then waited on a round trip per statement. Here
// BEGIN and every statement of the group are sent at once, and COMMIT (or
// ROLLBACK) follows when their results are in: two round trips and one flush
// for the whole group, whatever its size.

// pipelined is the committer's together on PostgreSQL: the writes of group
// in one transaction, or none.
func (t *Tables) pipelined(group []*writeRequest) error {
	if len(group) == 0 {
		return nil
	}
	return onConn(t.writer, func(ctx context.Context, pg *pgx.Conn) error {
		batch := &pgx.Batch{}
		batch.Queue("BEGIN")
		for _, r := range group {
			if err := r.ctx.Err(); err != nil {
				return err
			}
			for _, op := range r.ops {
				if op.replace {
					batch.Queue(op.sql, op.text, op.id)
				} else {
					batch.Queue(op.sql, op.text)
				}
			}
		}
		err := applyResults(pg.SendBatch(ctx, batch), group)
		if errors.Is(err, errNotRun) {
			// pgx could not prepare a statement of the pipeline (a table
			// dropped behind the table cache's back) and ran none. The ones
			// it did prepare stay on the server without pgx knowing, and
			// preparing them again on this connection would fail with
			// "already exists": database/sql drops the connection.
			return errors.Join(err, driver.ErrBadConn)
		}
		if err != nil {
			if _, rerr := pg.Exec(ctx, "ROLLBACK"); rerr != nil {
				// The connection's state is unknown: database/sql drops it.
				return errors.Join(err, rerr, driver.ErrBadConn)
			}
			return err
		}
		if _, err := pg.Exec(ctx, "COMMIT"); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
		return nil
	})
}

// onConn runs f on a connection of db, as pgx's own connection (database/sql
// has no pipelines). An error from f that wraps driver.ErrBadConn makes
// database/sql drop the connection. f gets a context of its own: the
// requests a pipeline serves check theirs before it is sent.
func onConn(db *sql.DB, f func(ctx context.Context, pg *pgx.Conn) error) error {
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close()
	return conn.Raw(func(driverConn any) error { return f(ctx, driverConn.(*stdlib.Conn).Conn()) })
}

// errNotRun says a pipeline's statements never ran.
var errNotRun = errors.New("pipeline not run")

// applyResults reads the results of a pipelined group (BEGIN first) and
// closes them; it fails on the first refused statement and on a replace
// that found no document.
func applyResults(results pgx.BatchResults, group []*writeRequest) error {
	defer results.Close()
	if _, err := results.Exec(); err != nil { // BEGIN: only fails when nothing ran
		return fmt.Errorf("%w: %w", errNotRun, err)
	}
	for _, r := range group {
		for _, op := range r.ops {
			tag, err := results.Exec()
			switch {
			case err != nil && op.replace:
				return fmt.Errorf("replace %s %s: %w", op.coll, op.id, err)
			case err != nil:
				return fmt.Errorf("insert into %s: %w", op.coll, err)
			case op.replace && tag.RowsAffected() == 0:
				return fmt.Errorf("replace %s %s: no such document: %w", op.coll, op.id, models.ErrConflict)
			}
		}
	}
	return results.Close()
}
