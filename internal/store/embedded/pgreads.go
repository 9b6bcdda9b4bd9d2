package embedded

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"

	"github.com/jackc/pgx/v5"
)

// Reads by _id on PostgreSQL, pipelined.
//
// Why: a due reminder reads four documents by _id (the reminder, its task,
// the recipient, their devices) and each read was a round trip of its own,
// so with hundreds of reminders in flight the two cores spent their time
// waking processes for messages of a few hundred bytes. Reads asked for at
// the same moment now go to the server as one pipeline on one connection:
// one write and one read of the socket for the lot. A lone read still costs
// one round trip, so nothing waits for company. A read failing inside a
// pipeline is asked again on its own (see send).

// maxReadGroup bounds the reads of one pipeline.
const maxReadGroup = 256

// readRequest is one Get waiting for a pipeline.
type readRequest struct {
	ctx  context.Context
	sql  string // the statement, with one parameter: the _id as JSON
	arg  string
	done chan readResult
}

type readResult struct {
	text []byte
	err  error // sql.ErrNoRows when there is no such document
}

// readPipeline sends the queued reads, several pipelines at once (one per
// loop, each on a connection of its own).
type readPipeline struct {
	db     *sql.DB
	queue  chan *readRequest
	closed chan struct{}
	ended  chan struct{}
	loops  int
}

func newReadPipeline(db *sql.DB, loops int) *readPipeline {
	p := &readPipeline{db: db, queue: make(chan *readRequest), closed: make(chan struct{}), ended: make(chan struct{}), loops: loops}
	for range loops {
		go p.run()
	}
	return p
}

// read returns the document text query finds for arg.
func (p *readPipeline) read(ctx context.Context, query, arg string) ([]byte, error) {
	r := &readRequest{ctx: ctx, sql: query, arg: arg, done: make(chan readResult, 1)}
	select {
	case p.queue <- r:
	case <-p.closed:
		return nil, errClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	res := <-r.done
	return res.text, res.err
}

func (p *readPipeline) close() {
	close(p.closed)
	for range p.loops {
		<-p.ended
	}
}

func (p *readPipeline) run() {
	defer func() { p.ended <- struct{}{} }()
	gather(p.queue, p.closed, maxReadGroup, p.send)
}

// send runs group as one pipeline and answers each request.
func (p *readPipeline) send(group []*readRequest) {
	live := group[:0]
	for _, r := range group {
		if err := r.ctx.Err(); err != nil {
			r.done <- readResult{err: err}
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	err := onConn(p.db, func(ctx context.Context, pg *pgx.Conn) error {
		batch := &pgx.Batch{}
		for _, r := range live {
			batch.Queue(r.sql, r.arg)
		}
		results := pg.SendBatch(ctx, batch)
		answered := 0
		for _, r := range live {
			var text []byte
			err := results.QueryRow().Scan(&text)
			if errors.Is(err, pgx.ErrNoRows) {
				err = sql.ErrNoRows
			}
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				break
			}
			r.done <- readResult{text: text, err: err}
			answered++
		}
		_ = results.Close() // every answer read is already given
		if answered == len(live) {
			live = nil
			return nil
		}
		// A statement failed. If pgx failed to prepare one of the
		// pipeline's statements (a table dropped behind the table cache's
		// back), it reports that error for the first result, whichever
		// statement it was, and leaves the statements it did prepare on the
		// server without knowing it: any later preparing of them on this
		// connection fails with "already exists". So the rest are asked
		// again one by one on other connections, and this one is dropped.
		for _, r := range live[answered:] {
			var text []byte
			err := p.db.QueryRowContext(r.ctx, r.sql, r.arg).Scan(&text)
			r.done <- readResult{text: text, err: err}
		}
		live = nil
		return driver.ErrBadConn
	})
	for _, r := range live { // no connection: the function never ran
		r.done <- readResult{err: err}
	}
}
