package accounts

import (
	"context"
	"math"
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/fieldcrm/fieldcrm/models"
)

// HashLimit bounds the password hashes (argon2id, for sign-up, sign-in,
// creating a user and changing a password) computed at once. Each one holds
// PasswordParams.MemoryKiB (19 MiB by default) while it runs: unbounded, 32
// concurrent failed sign-ins took a server from 85 MB to 579 MB and 64
// sign-ups to 1.26 GB, past the memory limits of the deploy files.
type HashLimit struct {
	// Concurrent is how many hashes run at once.
	Concurrent int
	// Queue is how many more callers may wait for a slot; beyond it a caller
	// gets a *models.RateLimitedError at once.
	Queue int
	// Wait is how long a queued caller waits before it gets one.
	Wait time.Duration
}

// DefaultHashMemoryBudget is the memory password hashing may hold at once when
// GOMEMLIMIT is not set: a quarter of 512 MiB, the smallest memory limit the
// deploy files give a replica (compose; Kubernetes gives 768 MiB).
const DefaultHashMemoryBudget = 128 << 20

// DefaultHashWait is how long a sign-in waits for a hashing slot: short, so a
// burst is answered with 429 and Retry-After rather than piling up.
const DefaultHashWait = 2 * time.Second

// DefaultHashLimit returns the limit for hashes of p: as many at once as
// there are CPUs (argon2id is CPU-bound: more would not finish sooner), but
// no more than the memory budget allows (a quarter of GOMEMLIMIT when it is
// set, else DefaultHashMemoryBudget), at least one; and a queue of 16 per
// slot, each waiting up to DefaultHashWait.
//
// Why a quarter: N hashes hold N × MemoryKiB of live heap, and Go's collector
// lets the heap grow to about twice the live heap (GOGC=100) before it
// collects, so hashing may take 2 × N × 19 MiB: with the 128 MiB budget, N = 6
// and 228 MiB, on top of the ~85 MB of an idle server, leaving room for
// requests under 512 MiB. A queued caller holds no hashing memory.
func DefaultHashLimit(p PasswordParams) HashLimit {
	budget := int64(DefaultHashMemoryBudget)
	if limit := debug.SetMemoryLimit(-1); limit > 0 && limit != math.MaxInt64 {
		budget = limit / 4
	}
	perHash := max(int64(p.MemoryKiB)*1024, 1)
	n := max(1, min(runtime.GOMAXPROCS(0), int(budget/perHash)))
	return HashLimit{Concurrent: n, Queue: 16 * n, Wait: DefaultHashWait}
}

// hashGate runs password hashes under a HashLimit.
type hashGate struct {
	slots   chan struct{}
	queue   int64
	wait    time.Duration
	waiting atomic.Int64
	running atomic.Int64
	peak    atomic.Int64
}

func newHashGate(l HashLimit) *hashGate {
	return &hashGate{slots: make(chan struct{}, max(l.Concurrent, 1)), queue: int64(max(l.Queue, 0)), wait: l.Wait}
}

// busy asks the caller to come back in a second: a slot frees every few tens
// of milliseconds.
func busy() error { return &models.RateLimitedError{RetryAfterSeconds: 1} }

// run runs fn in a slot: at once when one is free, else after waiting in the
// queue for up to the limit's Wait. A full queue or a wait that runs out
// returns a *models.RateLimitedError; a cancelled ctx returns its error.
func (g *hashGate) run(ctx context.Context, fn func()) error {
	select {
	case g.slots <- struct{}{}:
	default:
		if g.waiting.Add(1) > g.queue {
			g.waiting.Add(-1)
			return busy()
		}
		t := time.NewTimer(g.wait)
		select {
		case g.slots <- struct{}{}:
			t.Stop()
			g.waiting.Add(-1)
		case <-t.C:
			g.waiting.Add(-1)
			return busy()
		case <-ctx.Done():
			t.Stop()
			g.waiting.Add(-1)
			return ctx.Err()
		}
	}
	defer func() { <-g.slots }()
	n := g.running.Add(1)
	defer g.running.Add(-1)
	for p := g.peak.Load(); n > p && !g.peak.CompareAndSwap(p, n); p = g.peak.Load() {
	}
	fn()
	return nil
}

// hash returns password's hash, computed in a slot.
func (s *Service) hash(ctx context.Context, password string) (hash string, err error) {
	if gerr := s.hashes.run(ctx, func() { hash, err = s.password.HashPassword(password) }); gerr != nil {
		return "", gerr
	}
	return hash, err
}

// verify checks password against hash in a slot.
func (s *Service) verify(ctx context.Context, hash, password string) (ok bool, err error) {
	if gerr := s.hashes.run(ctx, func() { ok, err = VerifyPassword(hash, password) }); gerr != nil {
		return false, gerr
	}
	return ok, err
}

// PeakPasswordHashes is the most password hashes that ran at once since the
// service started: at most the HashLimit's Concurrent.
func (s *Service) PeakPasswordHashes() int { return int(s.hashes.peak.Load()) }

// PasswordHashesWaiting is how many callers wait for a hashing slot now
// (at most the HashLimit's Queue; beyond it they get 429).
func (s *Service) PasswordHashesWaiting() int { return int(s.hashes.waiting.Load()) }

// PasswordHashesRunning is how many password hashes run now.
func (s *Service) PasswordHashesRunning() int { return int(s.hashes.running.Load()) }
