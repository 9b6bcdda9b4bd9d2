package embedded

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Group commit of direct writes (SQLite; PostgreSQL in pgpipeline.go).
//
// Why: SQLite takes one write transaction at a time, and on this class of
// machine the BEGIN and COMMIT around a version claim and its record cost
// about as much as the statements themselves. Callers writing at the same
// moment (the reminder worker sends sixteen reminders at once; many phones
// push together) queue up on the one writer connection anyway. The committer
// takes whatever has queued, runs every caller's writes in one transaction,
// and commits once. If any caller's writes are refused (an insert of an
// existing _id), the transaction is rolled back and each caller's writes run
// again in a transaction of their own, so a caller's writes are still all or
// nothing and a refusal fails that caller alone. (A savepoint per caller would
// avoid the second run, but SQLite's copies of the pages under savepoints took
// 12% of a reminder burst's CPU; refusals are rare.) Write returns only once
// the commit is done, so a caller reads its own writes at once.

// maxGroup bounds the callers of one transaction. A commit costs several
// milliseconds whatever its size (the pages written to the log, the sync), so
// the more callers share one the better while one transaction does not hold
// the writer for long: in a reminder burst, raising this from 64 to 512 took
// the commits from about 16 callers each to about 66 and a sixth fewer
// commit seconds.
const maxGroup = 512

// writeRequest is one caller's writes, waiting for the committer.
type writeRequest struct {
	ctx  context.Context
	ops  []preparedWrite
	done chan error
}

// committer runs the group transactions of one database.
type committer struct {
	// together makes the writes of a group in one transaction, or none:
	// inTransaction on SQLite, pipelined (pgpipeline.go) on PostgreSQL.
	together func(group []*writeRequest) error
	queue    chan *writeRequest
	closed   chan struct{}
	ended    chan struct{}
}

func newCommitter(together func(group []*writeRequest) error) *committer {
	c := &committer{together: together, queue: make(chan *writeRequest), closed: make(chan struct{}), ended: make(chan struct{})}
	go c.run()
	return c
}

// errClosed is the answer to a write after Close.
var errClosed = errors.New("embedded: tables closed")

// write hands ops to the committer and waits for its transaction.
func (c *committer) write(ctx context.Context, ops []preparedWrite) error {
	r := &writeRequest{ctx: ctx, ops: ops, done: make(chan error, 1)}
	select {
	case c.queue <- r:
	case <-c.closed:
		return errClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	// Once queued the write is the committer's: wait for its outcome even if
	// ctx ends (the committer checks ctx before it starts the write), so
	// the caller never returns while its write may still commit.
	return <-r.done
}

func (c *committer) close() {
	close(c.closed)
	<-c.ended
}

func (c *committer) run() {
	defer close(c.ended)
	gather(c.queue, c.closed, maxGroup, c.commit)
}

// commit runs a group in one transaction; each request gets its outcome.
func (c *committer) commit(group []*writeRequest) {
	if len(group) > 1 {
		live := group[:0:0]
		for _, r := range group {
			if err := r.ctx.Err(); err != nil {
				r.done <- err
				continue
			}
			live = append(live, r)
		}
		if c.together(live) == nil {
			for _, r := range live {
				r.done <- nil
			}
			return
		}
		group = live // one was refused, or the commit failed: each alone
	}
	for _, r := range group {
		r.done <- c.together([]*writeRequest{r})
	}
}

// inTransaction returns a together for db that runs the writes of every
// request of a group with apply, all at once, in one transaction. Each
// request's context is checked before the transaction starts; once it has,
// the writes run to the end, as write promises its callers.
func inTransaction(db *sql.DB, apply func(ctx context.Context, tx *sql.Tx, ops []preparedWrite) error) func(group []*writeRequest) error {
	return func(group []*writeRequest) error {
		if len(group) == 0 {
			return nil
		}
		var ops []preparedWrite
		for _, r := range group {
			if err := r.ctx.Err(); err != nil {
				return err
			}
			ops = append(ops, r.ops...)
		}
		tx, err := db.BeginTx(context.Background(), nil)
		if err != nil {
			return fmt.Errorf("begin: %w", err)
		}
		if err := apply(context.Background(), tx, ops); err != nil {
			_ = tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
		return nil
	}
}

// gather hands handle each group of queued requests until closed is
// closed: the first to come and whatever is already queued behind it, up to
// most in all, without waiting for more (the write committer, and the read
// pipelines on PostgreSQL).
func gather[T any](queue <-chan T, closed <-chan struct{}, most int, handle func(group []T)) {
	for {
		var group []T
		select {
		case first := <-queue:
			group = append(group, first)
		case <-closed:
			return
		}
	more:
		for len(group) < most {
			select {
			case r := <-queue:
				group = append(group, r)
			default:
				break more
			}
		}
		handle(group)
	}
}
