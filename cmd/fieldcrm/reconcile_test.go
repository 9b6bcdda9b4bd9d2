package main

import (
	"context"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/alicebob/miniredis/v2"

	"github.com/fieldcrm/fieldcrm/internal/app"
	"github.com/fieldcrm/fieldcrm/internal/testenv"
)

// Two replicas sharing the database and Redis start together: the
// start-up reconciliation (a scan of every open task) runs on one of them,
// and the other leaves it to that one's lease.
func TestStartUpReconciliationRunsOnceAcrossReplicasStartingTogether(t *testing.T) {
	ctx := context.Background()
	vars := isolatedVars(t, "reconcile")
	if os.Getenv("REDIS_URL") == "" {
		vars["REDIS_URL"] = "redis://" + miniredis.RunT(t).Addr()
	}
	cfg, err := commandConfig(commandEnv(vars), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	first, err := startApp(ctx, cfg, testenv.DiscardLogger())
	defer first.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	second, err := first.Replica(ctx)
	defer second.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var scans, ran atomic.Int32
	var wg sync.WaitGroup
	for _, replica := range []*app.App{first, second} {
		wg.Go(func() {
			reconcile := reconcileReminders(replica)
			scan := func(ctx context.Context) (int, error) { scans.Add(1); return reconcile(ctx) }
			if newJobRunner(replica, cfg, testenv.DiscardLogger()).atStart(ctx, reconcileJob, cfg.ReminderReconcileEvery, "rebuilt", scan) {
				ran.Add(1)
			}
		})
	}
	wg.Wait()
	if scans.Load() != 1 || ran.Load() != 1 {
		t.Fatalf("%d scans (%d replicas said they ran it), want 1", scans.Load(), ran.Load())
	}
}

// serve listens (and answers its probes) before the start-up
// reconciliation, which runs beside it.
func TestStartUpReconciliationRunsAfterServeListens(t *testing.T) {
	p := startServe(t, isolatedVars(t, "listenfirst"))
	defer p.stop(t)
	waitFor(t, "the start-up reconciliation", func() bool { return strings.Contains(p.logs.String(), "reminder schedule rebuilt from MongoDB") })
	logs := p.logs.String()
	if listening, rebuilt := strings.Index(logs, `"msg":"listening"`), strings.Index(logs, "reminder schedule rebuilt from MongoDB"); listening < 0 || listening > rebuilt {
		t.Fatalf("the reconciliation ran before serve listened:\n%s", logs)
	}
}
