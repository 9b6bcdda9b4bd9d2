package ratelimit_test

import (
	"context"
	"testing"
	"time"

	"github.com/fieldcrm/fieldcrm/internal/redis/ratelimit"
	"github.com/fieldcrm/fieldcrm/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

func TestFailuresBlockAfterMaxAndResetClears(t *testing.T) {
	ctx := context.Background()
	rd := env.Redis(t)
	limiter := ratelimit.NewFailures(rd.Client, rd.Prefix, 3, time.Minute)
	for i := range 3 {
		if wait, err := limiter.Blocked(ctx, "a"); err != nil || wait != 0 {
			t.Fatalf("attempt %d blocked early: %v %v", i, wait, err)
		}
		if err := limiter.Failed(ctx, "a"); err != nil {
			t.Fatal(err)
		}
	}
	wait, err := limiter.Blocked(ctx, "a")
	if err != nil || wait <= 0 || wait > time.Minute {
		t.Fatalf("after 3 failures: wait %v, err %v", wait, err)
	}
	if wait, _ := limiter.Blocked(ctx, "b"); wait != 0 {
		t.Fatal("another key is blocked too")
	}
	if err := limiter.Reset(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if wait, _ := limiter.Blocked(ctx, "a"); wait != 0 {
		t.Fatal("still blocked after reset")
	}
}

// The window starts at the first failure and lasts Window, not a moment
// longer or shorter. The window is an hour and the test says how much of it
// passes, so no real waiting and no machine speed is involved.
func TestFailuresWindowExpires(t *testing.T) {
	ctx := context.Background()
	rd := env.Redis(t)
	const window = time.Hour
	limiter := ratelimit.NewFailures(rd.Client, rd.Prefix, 1, window)
	if err := limiter.Failed(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if wait, _ := limiter.Blocked(ctx, "a"); wait <= window-time.Minute || wait > window {
		t.Fatalf("blocked for %s after a failure, want about %s", wait, window)
	}
	rd.Advance(window - time.Minute)
	if wait, err := limiter.Blocked(ctx, "a"); wait <= 0 || wait > time.Minute || err != nil {
		t.Fatalf("a minute before the window ends: blocked for %v, %v", wait, err)
	}
	rd.Advance(time.Minute)
	if wait, err := limiter.Blocked(ctx, "a"); wait != 0 || err != nil {
		t.Fatalf("still blocked after the window: %v %v", wait, err)
	}
}
