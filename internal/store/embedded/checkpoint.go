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
// the writer) every checkpointEvery, on the other core, and the writer
// checkpoints by itself only past writerCheckpointPages, should this fall
// behind.

const (
	checkpointEvery = 250 * time.Millisecond
	// optimizeEvery is how often the planner's statistics are refreshed
	// where tables grew or shrank much since (PRAGMA optimize): which index
	// a list reads first depends on them (see Tables.Analyze).
	optimizeEvery = 10 * time.Minute
	// writerCheckpointPages is the writer's own auto-checkpoint threshold
	// (pages of 4 KiB): a backstop, not the usual path.
	writerCheckpointPages = 16000
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
		tick := time.NewTicker(checkpointEvery)
		defer tick.Stop()
		optimize := time.NewTicker(optimizeEvery)
		defer optimize.Stop()
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
			case <-tick.C:
				// A failed checkpoint (busy, or the file gone in a test's
				// cleanup) is tried again at the next tick; the writer's own
				// threshold keeps the log bounded meanwhile.
				_, _ = db.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)")
			}
		}
	}()
	return c
}

func (c *checkpointer) stop() {
	c.cancel()
	<-c.done
}
