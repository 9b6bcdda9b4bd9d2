package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/fieldcrm/fieldcrm/internal/redis/lease"
)

// Two worker replicas run a periodic job once per period between them, not
// once each: on every tick both try, the one that takes the job's lease
// runs it, and the lease outlives the ticks of the period. A failing job is
// logged and tried again the next period; the runner stops with its
// context. The test drives both runners tick by tick on Redis's own clock,
// so no timing of the machine decides it.
func TestJobRunsOncePerPeriodAcrossReplicas(t *testing.T) {
	mr := miniredis.RunT(t)
	client := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = client.Close() })
	const period = time.Hour

	var (
		mu   sync.Mutex
		runs []string // which replica ran, in order
		fail = true   // the first run fails
		logs bytes.Buffer
	)
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	job := func(name string) func(context.Context) (int, error) {
		return func(context.Context) (int, error) {
			mu.Lock()
			defer mu.Unlock()
			runs = append(runs, name)
			if fail {
				fail = false
				return 0, errors.New("the database is away")
			}
			return 3, nil
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	ticks := map[string]chan time.Time{}
	for _, name := range []string{"a", "b"} {
		ch := make(chan time.Time) // unbuffered: a send returns once the runner finished the tick before
		ticks[name] = ch
		r := jobRunner{leases: lease.New(client, "jobs:", name), log: logger.With("replica", name),
			ticker: func(every time.Duration) (<-chan time.Time, func()) {
				if every != time.Minute {
					t.Errorf("a runner of an hourly job looks every %s, want every minute", every)
				}
				return ch, func() {}
			}}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.every(ctx, "rfm-refresh", period, "RFM value tiers refreshed", job(name))
		}()
	}
	tickBoth := func() {
		for _, name := range []string{"a", "b", "a", "b"} { // the second round waits out the first
			ticks[name] <- time.Now()
		}
	}
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(runs)
	}

	tickBoth() // both try at once: one runs the job (and it fails)
	if n := count(); n != 1 {
		t.Fatalf("%d runs in the first period, want 1: %v", n, runs)
	}
	for range 5 { // the rest of the period: the lease is held
		mr.FastForward(period / 10)
		tickBoth()
	}
	if n := count(); n != 1 {
		t.Fatalf("%d runs in the first period after more ticks, want 1: %v", n, runs)
	}
	mr.FastForward(period - 5*period/10) // the next period
	tickBoth()
	if n := count(); n != 2 {
		t.Fatalf("%d runs after the second period began, want 2: %v", n, runs)
	}
	cancel()
	wg.Wait()

	out := logs.String()
	if !strings.Contains(out, "background job failed") || !strings.Contains(out, "the database is away") {
		t.Errorf("the failed run was not logged:\n%s", out)
	}
	if !strings.Contains(out, "RFM value tiers refreshed") || !strings.Contains(out, "count=3") {
		t.Errorf("the successful run was not logged with its count:\n%s", out)
	}
}

// At start-up the first replica runs the reconciliation and those starting
// within its period do not; after the period, or with the lease gone with a
// Redis that lost everything, the next one does; when Redis does not
// answer, a replica runs it anyway.
func TestStartUpJobRunsOncePerPeriodAcrossReplicas(t *testing.T) {
	mr := miniredis.RunT(t)
	client := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = client.Close() })
	const period = 10 * time.Minute
	ctx := context.Background()
	runs := 0
	job := func(context.Context) (int, error) { runs++; return 7, nil }
	replica := func(name string, c redis.UniversalClient) jobRunner {
		return jobRunner{leases: lease.New(c, "jobs:", name), log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	}
	steps := []struct {
		what   string
		before func()
		runner jobRunner
		want   bool
	}{
		{"the first replica", func() {}, replica("a", client), true},
		{"a second, a minute later", func() { mr.FastForward(time.Minute) }, replica("b", client), false},
		{"a third, after the period", func() { mr.FastForward(period) }, replica("c", client), true},
		{"a fourth, after Redis lost everything", func() { mr.FlushAll() }, replica("d", client), true},
	}
	for _, s := range steps {
		s.before()
		if ran := s.runner.atStart(ctx, "reminder-reconcile", period, "rebuilt", job); ran != s.want {
			t.Fatalf("%s: ran %v, want %v", s.what, ran, s.want)
		}
	}
	if runs != 3 {
		t.Fatalf("%d runs, want 3", runs)
	}
	broken := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	t.Cleanup(func() { _ = broken.Close() })
	if !replica("e", broken).atStart(ctx, "reminder-reconcile", period, "rebuilt", job) || runs != 4 {
		t.Fatalf("without Redis the job must run anyway (runs %d)", runs)
	}
}
