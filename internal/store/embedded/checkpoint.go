package embedded

import (
	"context"
	"database/sql"
	"time"
)

// Checkpoints of the SQLite write-ahead log, off the writer's path.
//
// Why: by default the connection whose commit takes the log past 1,000 pages
// copies the log into the database file (a checkpoint) before its commit
// returns. On the one writer connection that put about 12 of the 79 seconds
// the committer spent in a reminder burst on the serial path. Here a
// connection of its own runs a PASSIVE checkpoint (it never blocks a reader or
// the writer) every checkpointEvery, on the other core.
//
// A checkpoint copies no page past the oldest snapshot a reader still holds,
// and each attempt first sorts the index of every frame not yet copied. While
// a long read runs (an export, a whole first sync) the log grows, and an
// attempt copies nothing new: the checkpointer then waits longer between
// attempts, up to checkpointMaxWait, and back to checkpointEvery once one
// makes progress. The writer checkpoints by itself only past
// writerCheckpointPages: a backstop for a checkpointer that stopped, set far
// above what a long read grows the log to, since past it every commit of the
// writer makes an attempt (at 100,000 customers, a purge that read for
// minutes took the log to 2.8 GB, and those attempts a third of the writer's
// time). journalSizeLimit gives the file back once the log starts again.

const (
	checkpointEvery   = 250 * time.Millisecond
	checkpointMaxWait = 8 * time.Second
	// optimizeEvery is how often the planner's statistics are refreshed
	// where tables grew or shrank much since (PRAGMA optimize): which index
	// a list reads first depends on them (see Tables.Analyze).
	optimizeEvery = 10 * time.Minute
	// writerCheckpointPages is the writer's own auto-checkpoint threshold
	// (pages of 4 KiB, 1 GiB).
	writerCheckpointPages = 262144
	// journalSizeLimit is the size, in bytes, the log file is cut back to
	// when it starts again from its beginning.
	journalSizeLimit = 64 << 20
)

// checkpointer runs PASSIVE checkpoints on db until stop is called.
type checkpointer struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func startCheckpointer(db *sql.DB) *checkpointer {
	ctx, cancel := context.WithCancel(context.Background())
	c := &checkpointer{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		wait := checkpointEvery
		attempt := time.NewTimer(wait)
		defer attempt.Stop()
		optimize := time.NewTicker(optimizeEvery)
		defer optimize.Stop()
		var last checkpointResult
		for {
			select {
			case <-ctx.Done():
				return
			case <-optimize.C:
				// Best effort, like the checkpoints: stale statistics make
				// some lists slower, never wrong.
				if _, err := db.ExecContext(ctx, "PRAGMA optimize"); err == nil {
					_ = reloadStatistics(ctx, db)
				}
			case <-attempt.C:
				// A failed checkpoint (busy, or the file gone in a test's
				// cleanup) is tried again at the next attempt; the writer's
				// own threshold keeps the log bounded meanwhile.
				var now checkpointResult
				err := db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&now.busy, &now.logged, &now.copied)
				if err != nil {
					now = checkpointResult{}
				}
				wait = nextCheckpointWait(wait, last, now)
				last = now
				attempt.Reset(wait)
			}
		}
	}()
	return c
}

// checkpointResult is what PRAGMA wal_checkpoint answers: whether it was
// blocked, the frames in the log, and the frames copied into the database.
type checkpointResult struct {
	busy, logged, copied int
}

// nextCheckpointWait is the wait before the attempt after one that gave now
// (the one before it gave last): the shortest while attempts finish or
// make progress, twice the last wait, up to checkpointMaxWait, while a
// reader's snapshot keeps every attempt from copying anything new.
func nextCheckpointWait(wait time.Duration, last, now checkpointResult) time.Duration {
	stuck := now.logged > now.copied && now.copied == last.copied && now.logged >= last.logged
	if !stuck {
		return checkpointEvery
	}
	return min(2*wait, checkpointMaxWait)
}

func (c *checkpointer) stop() {
	c.cancel()
	<-c.done
}
