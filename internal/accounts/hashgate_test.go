package accounts

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/fieldcrm/fieldcrm/models"
)

// TestHashGateRunsTheLimitQueuesTheNextAndRefusesTheRest: with 2 slots and
// a queue of 3, two hashes run, three wait, and every other caller is
// refused at once with a RateLimitedError; the waiting ones run when slots
// free, never more than two at a time.
func TestHashGateRunsTheLimitQueuesTheNextAndRefusesTheRest(t *testing.T) {
	g := newHashGate(HashLimit{Concurrent: 2, Queue: 3, Wait: time.Hour})
	release := make(chan struct{})
	done := make(chan error, 5)
	for range 5 {
		go func() { done <- g.run(context.Background(), func() { <-release }) }()
	}
	for g.running.Load() != 2 || g.waiting.Load() != 3 {
		time.Sleep(time.Millisecond)
	}
	for i := range 59 {
		var rl *models.RateLimitedError
		if err := g.run(context.Background(), func() { t.Error("ran past the queue") }); !errors.As(err, &rl) || rl.RetryAfterSeconds < 1 {
			t.Fatalf("caller %d past the queue: %v", i, err)
		}
	}
	close(release)
	for range 5 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if p := g.peak.Load(); p != 2 {
		t.Fatalf("peak %d, want 2", p)
	}
}

// TestHashGateWaitEndsInRateLimitedOrCancellation: a queued caller gives up
// after the limit's wait, or when its context ends.
func TestHashGateWaitEndsInRateLimitedOrCancellation(t *testing.T) {
	g := newHashGate(HashLimit{Concurrent: 1, Queue: 1, Wait: time.Millisecond})
	release := make(chan struct{})
	go func() { _ = g.run(context.Background(), func() { <-release }) }()
	defer close(release)
	for g.running.Load() != 1 {
		time.Sleep(time.Millisecond)
	}
	var rl *models.RateLimitedError
	if err := g.run(context.Background(), func() {}); !errors.As(err, &rl) {
		t.Fatalf("after the wait: %v", err)
	}
	g.wait = time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := g.run(ctx, func() {}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	if g.waiting.Load() != 0 {
		t.Fatalf("%d still counted as waiting", g.waiting.Load())
	}
}

func TestDefaultHashLimitFitsTheMemoryBudget(t *testing.T) {
	l := DefaultHashLimit(DefaultPasswordParams)
	if l.Concurrent < 1 || int64(l.Concurrent)*int64(DefaultPasswordParams.MemoryKiB)<<10 > DefaultHashMemoryBudget || l.Queue < l.Concurrent || l.Wait <= 0 {
		t.Fatalf("%+v", l)
	}
}
