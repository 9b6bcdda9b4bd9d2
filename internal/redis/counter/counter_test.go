package counter_test

import (
	"context"
	"sync"
	"testing"

	"github.com/fieldcrm/fieldcrm/internal/redis/counter"
	"github.com/fieldcrm/fieldcrm/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

func TestNextIsUniqueAcrossConcurrentCallers(t *testing.T) {
	rd := env.Redis(t)
	c := counter.New(rd.Client, rd.Prefix)
	const callers = 50
	got := make(chan int64, callers)
	var wg sync.WaitGroup
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := c.Next(context.Background(), "seq")
			if err != nil {
				t.Error(err)
			}
			got <- n
		}()
	}
	wg.Wait()
	close(got)
	seen := map[int64]bool{}
	for n := range got {
		if seen[n] || n < 1 || n > callers {
			t.Fatalf("value %d repeated or out of range", n)
		}
		seen[n] = true
	}
}

func TestAtLeastRaisesButNeverLowers(t *testing.T) {
	ctx := context.Background()
	rd := env.Redis(t)
	c := counter.New(rd.Client, rd.Prefix)
	if err := c.AtLeast(ctx, "seq", 41); err != nil {
		t.Fatal(err)
	}
	if n, _ := c.Next(ctx, "seq"); n != 42 {
		t.Fatalf("after raising to 41, Next = %d", n)
	}
	if err := c.AtLeast(ctx, "seq", 10); err != nil {
		t.Fatal(err)
	}
	if n, _ := c.Next(ctx, "seq"); n != 43 {
		t.Fatalf("AtLeast lowered the counter: Next = %d", n)
	}
}

// TestNextIfSetLeavesAnUnsetCounterToTheCaller: a counter Redis does not hold
// gives 0 and stays unset; once raised it counts on from there.
func TestNextIfSetLeavesAnUnsetCounterToTheCaller(t *testing.T) {
	rd := env.Redis(t)
	c := counter.New(rd.Client, rd.Prefix)
	ctx := context.Background()
	if n, err := c.NextIfSet(ctx, "lost"); err != nil || n != 0 {
		t.Fatalf("unset counter: %d, %v; want 0", n, err)
	}
	if n, err := c.NextIfSet(ctx, "lost"); err != nil || n != 0 {
		t.Fatalf("unset counter asked again: %d, %v; want 0 (still unset)", n, err)
	}
	if err := c.AtLeast(ctx, "lost", 253); err != nil {
		t.Fatal(err)
	}
	for want := int64(254); want <= 256; want++ {
		if n, err := c.NextIfSet(ctx, "lost"); err != nil || n != want {
			t.Fatalf("raised counter: %d, %v; want %d", n, err, want)
		}
	}
}
