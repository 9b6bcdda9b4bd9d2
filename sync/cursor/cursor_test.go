package cursor_test

import (
	"context"
	"errors"
	"os"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/fieldcrm/fieldcrm/internal/testenv"
	"github.com/fieldcrm/fieldcrm/models"
	"github.com/fieldcrm/fieldcrm/sync/cursor"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// database stands in for the durable side: the highest number stored in
// records, the reservations and the devices' rounds.
type database struct {
	mu       sync.Mutex
	highest  int64
	reserved map[string]int64
	rounds   map[string][]models.SyncRound
}

func (d *database) SyncRounds(_ context.Context, tenant, user, device string) ([]models.SyncRound, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.rounds[tenant+"/"+user+"/"+device]), nil
}

func (d *database) PutSyncRounds(_ context.Context, tenant, user, device string, rounds []models.SyncRound) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.rounds == nil {
		d.rounds = map[string][]models.SyncRound{}
	}
	d.rounds[tenant+"/"+user+"/"+device] = slices.Clone(rounds)
	return nil
}

func (d *database) HighestSeq(context.Context, string) (int64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.highest, nil
}

func (d *database) SyncReserved(_ context.Context, tenant string) (int64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.reserved[tenant], nil
}

func (d *database) ReserveSync(_ context.Context, tenant string, upTo int64) (int64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.reserved == nil {
		d.reserved = map[string]int64{}
	}
	d.reserved[tenant] = max(d.reserved[tenant], upTo)
	return d.reserved[tenant], nil
}

func newSequencer(t *testing.T, highest int64) (*cursor.Sequencer, *clock) {
	rd := env.Redis(t)
	clk := &clock{t: time.Now()}
	s := cursor.New(rd.Client, rd.Prefix, 10*time.Second, clk.now, &database{highest: highest})
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
	s.SoleProcess()              // another process might hold numbers it has not reserved
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
	var wg sync.WaitGroup
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
	var highest int64
	for seq := range seen {
		if got[seq] {
			t.Fatalf("number %d handed out twice", seq)
		}
		got[seq] = true
		highest = max(highest, seq)
	}
	// Numbers taken before the counter was seeded are void and taken again,
	// so they need not be 2 to n+1; once all are finished, pulls reach them.
	if w, _ := s.Watermark(ctx, "t1"); w != highest {
		t.Fatalf("watermark %d after %d finished writes, the highest %d", w, n, highest)
	}
}

// A push is judged against where its device stood before the round's pull.
// A first sync held nothing before, so every page of it counts as seen; a
// later round stands where it began, however many pages it took, also for
// a push between its pages. What the server keeps of the rounds outlives
// the process and its Redis.
func TestPushBaseIsWhereTheRoundBegan(t *testing.T) {
	ctx := context.Background()
	_, db, s := onFreshDatabase(t)
	pull := func(device string, from, to int64, more bool) {
		t.Helper()
		if err := s.RememberPull(ctx, "t1", "u1", device, from, to, more, nil); err != nil {
			t.Fatal(err)
		}
	}
	pushBase := func(device string, at int64) (int64, bool) {
		t.Helper()
		base, known, err := s.PushBase(ctx, "t1", "u1", device, at)
		if err != nil {
			t.Fatal(err)
		}
		return base, known
	}
	// First sync in three pages: 0 → 100 → 200 → 300.
	pull("phone", 0, 100, true)
	pull("phone", 100, 200, true)
	pull("phone", 200, 300, false)
	if b, _ := pushBase("phone", 300); b != 300 {
		t.Fatalf("push after a first sync in pages: base %d, want 300", b)
	}
	// A later round in two pages: 300 → 350 → 400.
	pull("phone", 300, 350, true)
	// WatermelonDB pushes between pages too (synchronize() again while has_more).
	if b, _ := pushBase("phone", 350); b != 300 {
		t.Fatalf("push between the pages of a later round: base %d, want 300", b)
	}
	// The server restarts with an empty Redis between two pages.
	empty := env.Redis(t)
	s = cursor.New(empty.Client, empty.Prefix, 10*time.Second, nil, db)
	if start, _, err := s.RoundOf(ctx, "t1", "u1", "phone", 350); err != nil || start != 300 {
		t.Fatalf("the round of page cursor 350 after a restart: start %d (%v), want 300", start, err)
	}
	pull("phone", 350, 400, false)
	if b, _ := pushBase("phone", 400); b != 300 {
		t.Fatalf("push after a later round in pages, across a restart: base %d, want 300", b)
	}
	// One page: the round began where it pulled from.
	pull("tablet", 0, 400, false)
	pull("tablet", 400, 450, false)
	if b, _ := pushBase("tablet", 450); b != 400 {
		t.Fatalf("push after a one-page round: base %d, want 400", b)
	}
	// A pull dropped from the few rounds kept is not vouched for.
	for at := int64(500); at < 520; at++ {
		pull("tablet", at, at+1, false)
	}
	if b, known := pushBase("tablet", 450); known {
		t.Fatalf("push with a pull the server no longer keeps: base %d, known", b)
	}
	// A device of which the server keeps nothing last pulled where rounds
	// lived in Redis alone: judged from its cursor, as there.
	if b, known := pushBase("laptop", 450); !known || b != 450 {
		t.Fatalf("push of a device with no rounds kept: base %d, known %v; want 450, known", b, known)
	}
}

// A migration pull brings its new tables whole on every page of its round,
// also after a restart between two pages.
func TestNewTablesOfAMigrationRoundOutliveARestart(t *testing.T) {
	ctx := context.Background()
	_, db, s := onFreshDatabase(t)
	if err := s.RememberPull(ctx, "t1", "u1", "phone", 500, 600, true, []string{"surveys"}); err != nil {
		t.Fatal(err)
	}
	empty := env.Redis(t)
	s = cursor.New(empty.Client, empty.Prefix, 10*time.Second, nil, db)
	start, tables, err := s.RoundOf(ctx, "t1", "u1", "phone", 600)
	if err != nil || start != 500 || !slices.Equal(tables, []string{"surveys"}) {
		t.Fatalf("round of the migration's page cursor: start %d, tables %v (%v); want 500, [surveys]", start, tables, err)
	}
	if start, tables, _ := s.RoundOf(ctx, "t1", "u1", "phone", 500); start != 500 || tables != nil {
		t.Fatalf("a round's own start is not a page cursor: start %d, tables %v", start, tables)
	}
}

// A device's pulls that find nothing new write nothing more, and only its
// latest rounds are kept.
func TestRoundsKeptPerDeviceStayFew(t *testing.T) {
	ctx := context.Background()
	_, db, s := onFreshDatabase(t)
	for i := int64(1); i <= 50; i++ {
		if err := s.RememberPull(ctx, "t1", "u1", "phone", i*10, i*10+10, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	rounds, _ := db.SyncRounds(ctx, "t1", "u1", "phone")
	if len(rounds) > 10 || rounds[len(rounds)-1].To != 510 {
		t.Fatalf("%d rounds kept, the last to %d; want a few, the last to 510", len(rounds), rounds[len(rounds)-1].To)
	}
	if err := s.RememberPull(ctx, "t1", "u1", "phone", 510, 510, false, nil); err != nil {
		t.Fatal(err)
	}
	before, _ := db.SyncRounds(ctx, "t1", "u1", "phone")
	if err := s.RememberPull(ctx, "t1", "u1", "phone", 510, 510, false, nil); err != nil {
		t.Fatal(err)
	}
	after, _ := db.SyncRounds(ctx, "t1", "u1", "phone")
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("an idle pull wrote its round again: %v then %v", before, after)
	}
}

// Each process tells Redis only its floor: another process's write in flight
// holds pulls back as one's own does, and a process that died stops holding
// them back once the lease has passed. A counter Redis lost starts again above
// what MongoDB holds.
func TestProcessesHoldPullsBackUntilTheirWritesFinish(t *testing.T) {
	ctx := context.Background()
	rd := env.Redis(t)
	clk := &clock{t: time.Now()}
	db := &database{}
	a := cursor.New(rd.Client, rd.Prefix, 10*time.Second, clk.now, db)
	b := cursor.New(rd.Client, rd.Prefix, 10*time.Second, clk.now, db)
	slow, doneSlow, err := a.Begin(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	var last int64
	for range 5 {
		seq, done, err := b.Begin(ctx, "t1")
		if err != nil {
			t.Fatal(err)
		}
		done()
		last = seq
	}
	for _, s := range []*cursor.Sequencer{a, b} {
		if w, _ := s.Watermark(ctx, "t1"); w != slow-1 {
			t.Fatalf("watermark %d while %d is in flight in the other process", w, slow)
		}
	}
	doneSlow()
	if w, _ := b.Watermark(ctx, "t1"); w != last {
		t.Fatalf("watermark %d after every write finished, want %d", w, last)
	}
	// a takes a number and dies: after the lease, pulls pass it.
	crashed, _, _ := a.Begin(ctx, "t1")
	clk.add(5 * time.Second)
	after, done, _ := b.Begin(ctx, "t1")
	done()
	if w, _ := b.Watermark(ctx, "t1"); w != crashed-1 {
		t.Fatalf("watermark %d while %d may still commit", w, crashed)
	}
	clk.add(6 * time.Second)
	if w, _ := b.Watermark(ctx, "t1"); w != after {
		t.Fatalf("watermark %d after the dead process's lease, want %d", w, after)
	}
	// Redis loses everything (this test's keys: the Redis may be shared):
	// numbers start again above the reservation, above every number given,
	// and pulls wait a lease for the writes Redis no longer knows of.
	reserved, _ := db.SyncReserved(ctx, "t1")
	flush(t, rd)
	seq, done, err := a.Begin(ctx, "t1")
	if err != nil || seq <= after || seq <= reserved {
		t.Fatalf("first number after Redis lost its data: %d, %v (given before: up to %d, reserved %d)", seq, err, after, reserved)
	}
	var unavailable *models.UnavailableError
	if w, err := b.Watermark(ctx, "t1"); !errors.As(err, &unavailable) {
		t.Fatalf("watermark %d, %v right after the loss", w, err)
	}
	done()
	clk.add(11 * time.Second)
	rd.Advance(11 * time.Second)
	next, done, err := a.Begin(ctx, "t1")
	if err != nil || next <= seq {
		t.Fatalf("number after %d: %d, %v", seq, next, err)
	}
	if w, err := b.Watermark(ctx, "t1"); w != next-1 {
		t.Fatalf("watermark %d, %v while %d is in flight, a lease after the loss", w, err, next)
	}
	done()
}

// onFreshDatabase returns a Redis of the test's own, an empty database and
// a Sequencer over both.
func onFreshDatabase(t *testing.T) (*testenv.Redis, *database, *cursor.Sequencer) {
	rd := env.Redis(t)
	db := &database{}
	return rd, db, cursor.New(rd.Client, rd.Prefix, 10*time.Second, nil, db)
}

func flush(t *testing.T, rd *testenv.Redis) {
	t.Helper()
	keys, err := rd.Client.Keys(context.Background(), rd.Prefix+"*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("keys of the test: %v, %v", keys, err)
	}
	if err := rd.Client.Del(context.Background(), keys...).Err(); err != nil {
		t.Fatal(err)
	}
}

// A restart of the default deployment starts with an empty in-process Redis:
// the new process must neither reuse numbers nor answer a watermark below the
// cursors devices already hold (they would be told to sync from scratch).
func TestRestartWithEmptyRedisKeepsEveryCursorValid(t *testing.T) {
	ctx := context.Background()
	rd := env.Redis(t)
	db := &database{}
	before := cursor.New(rd.Client, rd.Prefix, 10*time.Second, nil, db)
	var last int64
	for range 3000 { // past two reservation blocks
		seq, done, err := before.Begin(ctx, "t1")
		if err != nil {
			t.Fatal(err)
		}
		done()
		last = seq
	}
	cursorHeld, err := before.Watermark(ctx, "t1")
	if err != nil || cursorHeld != last {
		t.Fatalf("watermark before the restart: %d, %v (last number %d)", cursorHeld, err, last)
	}
	flush(t, rd)
	after := cursor.New(rd.Client, rd.Prefix, 10*time.Second, nil, db)
	after.SoleProcess() // the in-process Redis of the default deployment
	w, err := after.Watermark(ctx, "t1")
	if err != nil || w < cursorHeld {
		t.Fatalf("watermark after the restart %d, %v: below the cursor %d a device holds", w, err, cursorHeld)
	}
	seq, done, err := after.Begin(ctx, "t1")
	if err != nil || seq <= last {
		t.Fatalf("first number after the restart %d, %v: not above %d", seq, err, last)
	}
	done()
}

// A Redis that goes back (an AOF that lost its last second, a promoted
// replica) keeps its keys but with older values: a process that was given
// higher numbers notices and moves past them, and a fresh process starts
// above the reservation.
func TestRewoundRedisReusesNoNumber(t *testing.T) {
	ctx := context.Background()
	rd := env.Redis(t)
	db := &database{}
	clk := &clock{t: time.Now()}
	s := cursor.New(rd.Client, rd.Prefix, 10*time.Second, clk.now, db)
	given := map[int64]bool{}
	take := func(s *cursor.Sequencer) int64 {
		t.Helper()
		seq, done, err := s.Begin(ctx, "t1")
		if err != nil {
			t.Fatal(err)
		}
		done()
		if given[seq] {
			t.Fatalf("number %d handed out twice", seq)
		}
		given[seq] = true
		return seq
	}
	for range 10 {
		take(s)
	}
	counter := "seq:{t1}"
	if err := rd.Client.Set(ctx, rd.Prefix+counter, 3, 0).Err(); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		take(s)
	}
	clk.add(11 * time.Second) // pulls wait a lease after a rewind
	rd.Advance(11 * time.Second)
	if w, err := s.Watermark(ctx, "t1"); w < 20 {
		t.Fatalf("watermark %d, %v after 20 numbers", w, err)
	}
	if err := rd.Client.Set(ctx, rd.Prefix+counter, 3, 0).Err(); err != nil {
		t.Fatal(err)
	}
	fresh := cursor.New(rd.Client, rd.Prefix, 10*time.Second, clk.now, db)
	if w, err := fresh.Watermark(ctx, "t1"); w < 20 && err == nil {
		t.Fatalf("a fresh process's watermark %d over a rewound Redis, below numbers given", w)
	}
	for range 10 {
		take(fresh)
		take(s)
	}
}

// Redis replaced by another server with an older counter (a replica promoted
// behind its master, a restart that lost the AOF's last second) while its
// "seeded" mark survives: a process that never held the numbers the old
// server gave must not hand them out again. Each notices the new server on
// its new connections and moves past the reservation first.
func TestAnotherRedisServerReusesNoNumberInAnyProcess(t *testing.T) {
	ctx := context.Background()
	mr := miniredis.RunT(t)
	var server atomic.Value
	server.Store("first")
	db := &database{}
	given := map[int64]string{}
	process := func(name string) *cursor.Sequencer {
		w := cursor.WatchNamedBy(func() string { return server.Load().(string) })
		client := redis.NewClient(&redis.Options{Addr: mr.Addr(), OnConnect: w.OnConnect})
		t.Cleanup(func() { _ = client.Close() })
		s := cursor.New(client, "p:", 10*time.Second, nil, db)
		s.WatchServer(w)
		return s
	}
	a, b := process("a"), process("b")
	take := func(s *cursor.Sequencer, name string) int64 {
		t.Helper()
		seq, done, err := s.Begin(ctx, "t1")
		if err != nil {
			t.Fatal(err)
		}
		done()
		if by, ok := given[seq]; ok {
			t.Fatalf("number %d handed out to %s and again to %s", seq, by, name)
		}
		given[seq] = name
		return seq
	}
	take(b, "b")
	var first int64
	for range 20 {
		seq := take(a, "a") // a takes numbers b never held
		if first == 0 {
			first = seq
		}
	}
	held, finish, err := a.Begin(ctx, "t1") // a write under way across the change
	if err != nil {
		t.Fatal(err)
	}
	given[held] = "a"
	// The new server's counter stands among a's numbers.
	server.Store("second")
	mr.Close()
	if err := mr.Restart(); err != nil {
		t.Fatal(err)
	}
	mr.Set("p:seq:{t1}", strconv.FormatInt(first+4, 10))
	// A process started after the change knows the tenant's counter was
	// last checked on another server: it waits for a's write too.
	fresh := process("fresh")
	var unavailable *models.UnavailableError
	if w, err := fresh.Watermark(ctx, "t1"); !errors.As(err, &unavailable) {
		t.Fatalf("a process started after the change answered watermark %d, %v while %d may be in flight", w, err, held)
	}
	finish()
	for range 10 {
		take(b, "b")
		take(a, "a")
		take(fresh, "fresh")
	}
}

// A process that only served pulls knows the counter it saw: after Redis
// lost it, its watermark neither answers 1 (every phone would be told to
// start over) nor passes writes other processes may have under way.
func TestPullOnlyProcessAfterRedisLostNeitherResetsPhonesNorPassesWrites(t *testing.T) {
	ctx := context.Background()
	rd := env.Redis(t)
	db := &database{}
	writer := cursor.New(rd.Client, rd.Prefix, 10*time.Second, nil, db)
	for range 30 {
		_, done, err := writer.Begin(ctx, "t1")
		if err != nil {
			t.Fatal(err)
		}
		done()
	}
	reader := cursor.New(rd.Client, rd.Prefix, 10*time.Second, nil, db)
	held, err := reader.Watermark(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	flush(t, rd)
	w, err := reader.Watermark(ctx, "t1")
	var unavailable *models.UnavailableError
	if !errors.As(err, &unavailable) {
		t.Fatalf("watermark %d, %v after Redis lost the counter; a phone holds %d", w, err, held)
	}
	rd.Advance(11 * time.Second)
	if w, err := reader.Watermark(ctx, "t1"); err != nil || w < held {
		t.Fatalf("watermark %d, %v a lease after the loss, below the cursor %d a phone holds", w, err, held)
	}
}

// Redis lost its data while a write of another process held a number: no
// process can know of that number any more, so pulls wait (503 with
// Retry-After) for a lease, after which the write has committed or can no
// longer. The default deployment's only process knows its own writes and
// does not wait.
func TestWritesInFlightWhenRedisIsLostHoldPullsBack(t *testing.T) {
	ctx := context.Background()
	rd := env.Redis(t)
	clk := &clock{t: time.Now()}
	db := &database{}
	lease := 10 * time.Second
	a := cursor.New(rd.Client, rd.Prefix, lease, clk.now, db)
	b := cursor.New(rd.Client, rd.Prefix, lease, clk.now, db)
	for range 5 {
		_, done, err := b.Begin(ctx, "t1")
		if err != nil {
			t.Fatal(err)
		}
		done()
	}
	held, finish, err := a.Begin(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	flush(t, rd)
	_, done, err := b.Begin(ctx, "t1") // b finds the counter gone
	if err != nil {
		t.Fatal(err)
	}
	done()
	var unavailable *models.UnavailableError
	w, err := b.Watermark(ctx, "t1")
	if !errors.As(err, &unavailable) || unavailable.RetryAfterSeconds < 1 {
		t.Fatalf("watermark %d, %v while number %d of another process may be in flight; want it unavailable", w, err, held)
	}
	fresh := cursor.New(rd.Client, rd.Prefix, lease, clk.now, db)
	if _, err := fresh.Watermark(ctx, "t1"); !errors.As(err, &unavailable) {
		t.Fatalf("a process started after the loss answered a watermark: %v", err)
	}
	finish()
	clk.add(lease + time.Second)
	rd.Advance(lease + time.Second)
	if w, err := b.Watermark(ctx, "t1"); err != nil || w < held {
		t.Fatalf("watermark %d, %v a lease after the loss: below number %d, committed", w, err, held)
	}

	sole := env.Redis(t)
	alone := cursor.New(sole.Client, sole.Prefix, lease, clk.now, db)
	alone.SoleProcess()
	if _, done, err := alone.Begin(ctx, "t2"); err == nil {
		done()
	}
	flush(t, sole)
	restarted := cursor.New(sole.Client, sole.Prefix, lease, clk.now, db)
	restarted.SoleProcess()
	if _, err := restarted.Watermark(ctx, "t2"); err != nil {
		t.Fatalf("the only process waited after its in-process Redis was lost: %v", err)
	}
}

// The watch names a real Redis by its run_id, the same on every connection
// to one server; the in-process Redis has none, and its connections are
// not refused for it.
func TestWatchNamesTheRedisServer(t *testing.T) {
	ctx := context.Background()
	opts := &redis.Options{}
	if url := os.Getenv("REDIS_URL"); url != "" {
		parsed, err := redis.ParseURL(url)
		if err != nil {
			t.Fatal(err)
		}
		opts = parsed
	} else {
		opts.Addr = miniredis.RunT(t).Addr()
	}
	w := cursor.NewWatch()
	for range 2 {
		o := *opts
		o.OnConnect = w.OnConnect
		client := redis.NewClient(&o)
		if err := client.Ping(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		_ = client.Close()
	}
	real := os.Getenv("REDIS_URL") != ""
	if real && len(w.Server()) != 40 {
		t.Fatalf("a real Redis named %q, want its 40-character run_id", w.Server())
	}
	if !real && w.Server() != "" {
		t.Fatalf("the in-process Redis named %q", w.Server())
	}
	if w.Changes() != 0 {
		t.Fatalf("two connections to one server counted %d changes", w.Changes())
	}
}

// A process's own numbers, taken while its watermark is read, are above the
// counter the watermark saw: that is no rewind, and pulls never wait for it.
func TestWatermarksBesideWritesNeverTakeThemForARewind(t *testing.T) {
	ctx := context.Background()
	_, _, s := onFreshDatabase(t)
	if _, err := s.Watermark(ctx, "t1"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 150 {
				if w < 4 {
					_, done, err := s.Begin(ctx, "t1")
					if err != nil {
						errs <- err
						return
					}
					done()
					continue
				}
				if _, err := s.Watermark(ctx, "t1"); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("writes and pulls of one process, nothing lost: %v", err)
	}
}
