package cursor_test

import (
	"context"
	gosync "sync"
	"testing"
	"time"

	"github.com/fieldcrm/fieldcrm/sync/cursor"
	"github.com/fieldcrm/fieldcrm/sync/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

type clock struct {
	mu gosync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newSequencer(t *testing.T, floor int64) (*cursor.Sequencer, *clock) {
	rd := env.Redis(t)
	clk := &clock{t: time.Now()}
	s := cursor.New(rd.Client, rd.Prefix, 10*time.Second, clk.now, func(context.Context, string) (int64, error) { return floor, nil })
	return s, clk
}

func TestWatermarkStopsBelowTheOldestWriteInFlight(t *testing.T) {
	ctx := context.Background()
	s, _ := newSequencer(t, 0)
	if w, err := s.Watermark(ctx, "t1"); err != nil || w != 1 {
		t.Fatalf("watermark of an empty tenant: %d, %v", w, err)
	}
	slow, doneSlow, err := s.Begin(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	fast, doneFast, _ := s.Begin(ctx, "t1")
	doneFast()
	if fast != slow+1 {
		t.Fatalf("numbers %d then %d", slow, fast)
	}
	// The fast write committed, the slow one did not: a pull must not pass slow.
	if w, _ := s.Watermark(ctx, "t1"); w != slow-1 {
		t.Fatalf("watermark %d while %d is in flight", w, slow)
	}
	doneSlow()
	if w, _ := s.Watermark(ctx, "t1"); w != fast {
		t.Fatalf("watermark %d after both finished, want %d", w, fast)
	}
	if w, _ := s.Watermark(ctx, "t2"); w != 1 {
		t.Fatalf("another tenant's watermark moved: %d", w)
	}
}

func TestAbandonedNumberExpiresAfterTheLease(t *testing.T) {
	ctx := context.Background()
	s, clk := newSequencer(t, 0)
	crashed, _, _ := s.Begin(ctx, "t1") // never finished
	later, done, _ := s.Begin(ctx, "t1")
	done()
	if w, _ := s.Watermark(ctx, "t1"); w != crashed-1 {
		t.Fatalf("watermark %d", w)
	}
	clk.add(11 * time.Second)
	if w, _ := s.Watermark(ctx, "t1"); w != later {
		t.Fatalf("watermark %d after the lease, want %d", w, later)
	}
}

func TestCounterStartsAboveWhatMongoDBHolds(t *testing.T) {
	ctx := context.Background()
	s, _ := newSequencer(t, 500) // Redis empty, records up to 500 stored
	seq, done, err := s.Begin(ctx, "t1")
	if err != nil || seq != 501 {
		t.Fatalf("first number after seeding: %d, %v", seq, err)
	}
	done()
}

func TestConcurrentBeginsGetDistinctNumbers(t *testing.T) {
	ctx := context.Background()
	s, _ := newSequencer(t, 0)
	const n = 64
	seen := make(chan int64, n)
	var wg gosync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			seq, done, err := s.Begin(ctx, "t1")
			if err != nil {
				t.Error(err)
				return
			}
			done()
			seen <- seq
		}()
	}
	wg.Wait()
	close(seen)
	got := map[int64]bool{}
	for seq := range seen {
		if got[seq] {
			t.Fatalf("number %d handed out twice", seq)
		}
		got[seq] = true
	}
	if w, _ := s.Watermark(ctx, "t1"); w != n+1 {
		t.Fatalf("watermark %d after %d finished writes from 2", w, n)
	}
}
