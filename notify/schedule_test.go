package notify_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fieldcrm/fieldcrm/notify"
)

// The schedule on its own: reminders filed by second, moved, removed,
// ensured, claimed once, and taken back when a claim runs out.
func TestScheduleFilesMovesAndClaimsEachReminderOnce(t *testing.T) {
	ctx := context.Background()
	rd := env.Redis(t)
	now := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	s := notify.NewSchedule(rd.Client, rd.Prefix, 10*time.Second, clock)
	claim := func(limit int) []string {
		t.Helper()
		ids, err := s.Claim(ctx, limit)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(ids)
		return ids
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	// 3,000 reminders over one minute, from 2 s from now.
	fire := map[string]time.Time{}
	for i := range 3000 {
		fire[fmt.Sprintf("r%04d", i)] = now.Add(2*time.Second + time.Duration(i)*20*time.Millisecond)
	}
	must(s.AddMany(ctx, fire))
	if next, ok, err := s.Next(ctx); err != nil || !ok || !next.Equal(now.Add(2*time.Second)) {
		t.Fatalf("next: %v %v %v", next, ok, err)
	}
	if got := claim(100); len(got) != 0 {
		t.Fatalf("claimed %d before anything was due", len(got))
	}
	// r0000 moves an hour later, r0001 is removed, r0002 is ensured at
	// another time (which must not move it).
	must(s.Add(ctx, "r0000", now.Add(time.Hour)))
	must(s.Remove(ctx, "r0001"))
	must(s.Ensure(ctx, "r0002", now.Add(2*time.Hour)))
	must(s.Ensure(ctx, "new", now.Add(3*time.Second)))

	// 30 s on, 1,401 are due (2 s .. 30 s at 20 ms, less r0000 and r0001)
	// plus "new"; claims of 500 take them in order of second, each once.
	now = now.Add(30 * time.Second)
	seen := map[string]bool{}
	for range 3 {
		for _, id := range claim(500) {
			if seen[id] {
				t.Fatalf("%s claimed twice", id)
			}
			seen[id] = true
		}
	}
	if len(seen) != 1400 || !seen["r0002"] || !seen["new"] || seen["r0000"] || seen["r0001"] || seen["r1401"] {
		t.Fatalf("claimed %d (r0002 %v, new %v, r0000 %v, r0001 %v, r1401 %v)", len(seen), seen["r0002"], seen["new"], seen["r0000"], seen["r0001"], seen["r1401"])
	}
	// Released claims stay gone; an unreleased one returns when its claim
	// runs out, and is claimed once more.
	for id := range seen {
		if id != "r0002" {
			must(s.Done(ctx, id))
		}
	}
	now = now.Add(11 * time.Second) // 41 s: r1401..r1950 are due too
	got := claim(1000)
	if len(got) != 551 || !slices.Contains(got, "r0002") || slices.Contains(got, "r0003") {
		t.Fatalf("after the claims ran out: %d claimed, r0002 among them %v", len(got), slices.Contains(got, "r0002"))
	}
	for _, id := range got {
		if id != "r0002" {
			must(s.Done(ctx, id))
		}
	}
	// Ensure does not put back what is claimed.
	must(s.Ensure(ctx, "r0002", now))
	if again := claim(1000); len(again) != 0 {
		t.Fatalf("claimed again: %v", again)
	}
	// The rest, and r0000 at its new time; nothing twice, nothing left.
	now = now.Add(time.Hour)
	rest := claim(5000)
	// 3,000, less r0001 removed, the 1,399 and 550 claimed before; r0002's
	// second claim ran out too.
	if len(rest) != 3000-1-1399-550+1 {
		t.Fatalf("%d left at the end", len(rest))
	}
	if _, ok, err := s.Next(ctx); err != nil || ok {
		t.Fatalf("the schedule still has something: %v %v", ok, err)
	}
}

// Reminders an earlier version left in its single due set are claimed.
func TestScheduleTakesOverTheSingleDueSetOfEarlierVersions(t *testing.T) {
	ctx := context.Background()
	rd := env.Redis(t)
	now := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	s := notify.NewSchedule(rd.Client, rd.Prefix, 0, func() time.Time { return now })
	legacy := rd.Prefix + "{reminders}:due"
	t.Cleanup(func() { rd.Client.Del(context.Background(), legacy) })
	var zs []redis.Z
	for i := range 1500 {
		zs = append(zs, redis.Z{Score: float64(now.Add(time.Duration(i-750) * time.Second).UnixMilli()), Member: fmt.Sprint("old", i)})
	}
	if err := rd.Client.ZAdd(ctx, legacy, zs...).Err(); err != nil {
		t.Fatal(err)
	}
	claimed := map[string]bool{}
	for range 3 {
		ids, err := s.Claim(ctx, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			claimed[id] = true
		}
	}
	if len(claimed) != 751 || !claimed["old0"] || !claimed["old750"] || claimed["old751"] {
		t.Fatalf("claimed %d of the 751 due", len(claimed))
	}
	if n, _ := rd.Client.Exists(ctx, legacy).Result(); n != 0 {
		t.Fatal("the old due set is still there")
	}
	if next, ok, err := s.Next(ctx); err != nil || !ok || !next.Equal(now.Add(time.Second)) {
		t.Fatalf("next after the take-over: %v %v %v", next, ok, err)
	}
}
