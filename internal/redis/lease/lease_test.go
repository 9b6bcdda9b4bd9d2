package lease_test

import (
	"context"
	"testing"
	"time"

	"github.com/fieldcrm/fieldcrm/internal/redis/lease"
	"github.com/fieldcrm/fieldcrm/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

func TestOneReplicaTakesAJobPerPeriod(t *testing.T) {
	ctx := context.Background()
	r := env.Redis(t)
	rdb, prefix := r.Client, r.Prefix
	first := lease.New(rdb, prefix, "replica-a")
	second := lease.New(rdb, prefix, "replica-b")

	// The period is an hour and the test says how much of it passes: the
	// outcome does not depend on how fast the three takes follow each other.
	const period = time.Hour
	got := 0
	for _, l := range []*lease.Leases{first, second, first} {
		ok, err := l.Take(ctx, "pool-reclaim", period)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			got++
		}
	}
	if got != 1 {
		t.Fatalf("%d takers of one period's lease, want 1", got)
	}
	if holder, err := first.Holder(ctx, "pool-reclaim"); err != nil || holder != "replica-a" {
		t.Fatalf("holder %q, %v; want replica-a", holder, err)
	}
	// Another job is a lease of its own.
	if ok, err := second.Take(ctx, "purge", period); err != nil || !ok {
		t.Fatalf("second job's lease: %v %v", ok, err)
	}
	// A minute before the period ends, the lease is still held.
	r.Advance(period - time.Minute)
	if ok, err := second.Take(ctx, "pool-reclaim", period); err != nil || ok {
		t.Fatalf("lease taken within its period: %v %v", ok, err)
	}
	// When the period is over, the lease is free again, for either replica.
	r.Advance(time.Minute)
	if ok, err := second.Take(ctx, "pool-reclaim", period); err != nil || !ok {
		t.Fatalf("lease after its period: %v %v", ok, err)
	}
}

func TestPeriodTTLIsShorterThanThePeriod(t *testing.T) {
	if got := lease.PeriodTTL(10 * time.Minute); got != 9*time.Minute {
		t.Fatalf("PeriodTTL(10m) = %v", got)
	}
}
