package store

import (
	"context"
	"errors"
	"sync"
	"time"
)

// turns queues this process's writers of one record that lost a round of
// Revise to another writer. A loser retries only while it holds the
// record's turn, so among the losers one retries at a time, against new
// arrivals only: without it, forty phones pushing points to one customer
// at once retry in a crowd, and one of them can lose thirty rounds in a row
// (measured under the race detector). Writers on other replicas still
// meet only through Revise's version check.
type turns struct {
	mu      sync.Mutex
	records map[string]*turn
}

// turn is one record's queue: holding the one token in baton is holding the
// turn; waiting counts the writers that hold or want it, so the last one
// out removes the record from the map.
type turn struct {
	baton   chan struct{}
	waiting int
}

// take waits until the caller holds the turn for key, or until the
// deadline or ctx ends the wait. A turn is taken while the holder may
// revise other records inside its edit (a points entry revises its
// customer); the deadline means a cycle of such waits ends in a conflict
// for one writer, never in writers that wait forever.
func (t *turns) take(ctx context.Context, key string, deadline time.Time) (release func(), err error) {
	t.mu.Lock()
	if t.records == nil {
		t.records = map[string]*turn{}
	}
	r := t.records[key]
	if r == nil {
		r = &turn{baton: make(chan struct{}, 1)}
		r.baton <- struct{}{}
		t.records[key] = r
	}
	r.waiting++
	t.mu.Unlock()

	leave := func() {
		t.mu.Lock()
		r.waiting--
		if r.waiting == 0 {
			delete(t.records, key)
		}
		t.mu.Unlock()
	}
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case <-r.baton:
		return func() {
			r.baton <- struct{}{}
			leave()
		}, nil
	case <-timer.C:
		leave()
		return nil, errTurnTimedOut
	case <-ctx.Done():
		leave()
		return nil, ctx.Err()
	}
}

// errTurnTimedOut says the wait for a record's turn outlasted Revise's
// budget.
var errTurnTimedOut = errors.New("waited too long for a turn to write the record")
