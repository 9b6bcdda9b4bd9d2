// Package cursor allocates the per-tenant sync sequence: every change to a
// synced record takes the next number, and a device's sync cursor is the
// highest number it has seen. The sequence lives in Redis, shared by every
// replica.
//
// Numbers are taken before the write they stamp commits, so a slow write can
// commit number 10 after a fast one committed 11. A pull that read up to 11 and
// moved its cursor there would never see 10. So every number stays "in flight"
// until its write finishes, and Watermark, the highest number a pull may read
// up to, stops just below the oldest number still in flight. A writer that dies
// without finishing releases its number after the lease, and writers bound their
// commit by the same lease, so an expired number is never committed later.
//
// Each process keeps its numbers in flight itself and tells Redis only its
// floor: a number at or below every number it holds or is taking. A process
// with nothing in flight takes its number and writes its floor in one script;
// while it has numbers in flight, taking another is one native INCR, where it
// was a script for every number. (The in-process Redis builds a whole Lua
// interpreter for every script, which made the number half of a pushed edit's
// time there.) The floor rises as numbers finish: an INCR sent after this
// process was given number n answers more than n, so n+1 bounds a number still
// being taken.
//
// Redis is an index, not the truth: it may lose its data (the in-process Redis
// of the default deployment keeps nothing across restarts) or go back (an AOF
// losing its last second, a replica promoted, a snapshot restored). So every
// number handed out is first reserved in the database, in blocks: the tenant's
// reservation is at or above every number ever given, and so above every
// cursor a device holds. Before a process first hands out numbers or a
// watermark for a tenant, and whenever it sees the counter below a number it
// was given, it raises the counter to the reservation; a restart or a rewound
// Redis can then neither reuse a number nor tell a device its cursor is ahead.
package cursor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fieldcrm/fieldcrm/models"
)

// DefaultLease bounds how long a write may hold its number in flight.
const DefaultLease = time.Minute

// ReserveBlock is how many numbers one reservation in the database covers: one
// write to the database per 1,024 numbers. After a restart the counter resumes
// above the reservation, so each restart skips at most this many numbers.
const ReserveBlock = 1024

// Store is the durable side of the sequence, in the database.
type Store interface {
	// SyncReserved returns the highest number reserved for tenant (0: none).
	SyncReserved(ctx context.Context, tenant string) (int64, error)
	// ReserveSync raises tenant's reservation to at least upTo (never lowers
	// it) and returns the reservation after the raise.
	ReserveSync(ctx context.Context, tenant string, upTo int64) (int64, error)
	// HighestSeq returns the highest number stored in any record of tenant; it
	// seeds tenants whose numbers were handed out before reservations existed.
	HighestSeq(ctx context.Context, tenant string) (int64, error)
	// SyncRounds and PutSyncRounds keep the rounds of a device's latest
	// pulls (see RememberPull).
	SyncRounds(ctx context.Context, tenant, user, device string) ([]models.SyncRound, error)
	PutSyncRounds(ctx context.Context, tenant, user, device string, rounds []models.SyncRound) error
}

// Sequencer hands out sync numbers per tenant.
type Sequencer struct {
	client redis.UniversalClient
	prefix string
	lease  time.Duration
	now    func() time.Time
	// store keeps the reservations (see the package comment).
	store Store
	// process names this Sequencer among the tenant's writers in Redis.
	process string
	// watch, when set, tells a change of Redis server (see Watch); sole says
	// no other process shares this Redis (the in-process one), so none can
	// hold numbers this one does not know of.
	watch   *Watch
	sole    bool
	lag     LagObserver
	mu      sync.Mutex
	tenants map[string]*flight
}

// WatchServer makes the Sequencer check the counter again after w sees Redis
// become another server. Call it before the Sequencer serves.
func (s *Sequencer) WatchServer(w *Watch) { s.watch = w }

// LagObserver hears, at each watermark, how far it is below the tenant's
// newest sync number: the numbers of writes still in flight, which pulls
// wait for (package telemetry implements it).
type LagObserver interface {
	WatermarkLag(changes int64)
}

// ObserveLag makes the Sequencer tell o of each watermark's lag. Call it
// before the Sequencer serves.
func (s *Sequencer) ObserveLag(o LagObserver) { s.lag = o }

// SoleProcess tells the Sequencer that no other process shares its Redis
// (the in-process one of the default deployment): after Redis lost its
// data, no write of another process can still hold a number, so pulls need
// not settle (see check). Call it before the Sequencer serves.
func (s *Sequencer) SoleProcess() { s.sole = true }

// New returns a Sequencer keeping its keys under prefix and its reservations
// in store.
func New(client redis.UniversalClient, prefix string, lease time.Duration, now func() time.Time, store Store) *Sequencer {
	if lease <= 0 {
		lease = DefaultLease
	}
	if now == nil {
		now = time.Now
	}
	name := make([]byte, 8)
	_, _ = rand.Read(name)
	return &Sequencer{client: client, prefix: prefix, lease: lease, now: now, store: store,
		process: hex.EncodeToString(name), tenants: map[string]*flight{}}
}

// Lease is how long a write may hold its number; writers give their commit a
// deadline no later than this.
func (s *Sequencer) Lease() time.Duration { return s.lease }

// tenantKeys are a tenant's keys. The tenant id is their hash tag: scripts
// touch several, and on a Redis Cluster the keys of one script must live in
// one slot.
type tenantKeys struct {
	counter string // the last number given
	seeded  string // set once the counter holds at least what MongoDB holds
	floors  string // sorted set: process → its floor
	seen    string // hash: process → when it last wrote its floor (ms)
	settle  string // set while pulls wait after Redis lost its data
	server  string // the server (run_id) the last check ran on
}

func (s *Sequencer) keys(tenant string) tenantKeys {
	tag := ":{" + tenant + "}"
	return tenantKeys{counter: s.prefix + "seq" + tag, seeded: s.prefix + "seeded" + tag,
		floors: s.prefix + "floors" + tag, seen: s.prefix + "seen" + tag,
		settle: s.prefix + "settle" + tag, server: s.prefix + "server" + tag}
}

// flight is what this process holds of one tenant's numbers.
type flight struct {
	mu sync.Mutex
	// held are numbers given and not finished, with when they were taken;
	// taking are the lower bounds of numbers being taken.
	held   map[int64]time.Time
	taking map[int]bound
	nextID int
	// given is the highest number this process knows was given.
	given int64
	// told is the floor in Redis (0: none), written at toldAt.
	told   int64
	toldAt time.Time

	// reserving guards reserved, the tenant's reservation as this process
	// last read or wrote it (0: not checked yet in this process).
	reserving sync.Mutex
	reserved  int64
	// watched is the Watch's count of server changes the last check
	// covered: a number or watermark read while the count differs may come
	// from a server not checked yet.
	watched atomic.Uint64
}

type bound struct {
	min int64
	at  time.Time
}

// hold records number seq, given at at, as in flight. Callers hold f.mu.
func (f *flight) hold(seq int64, at time.Time) {
	f.held[seq] = at
	f.given = max(f.given, seq)
}

func (s *Sequencer) flightOf(tenant string) *flight {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.tenants[tenant]
	if f == nil {
		f = &flight{held: map[int64]time.Time{}, taking: map[int]bound{}}
		s.tenants[tenant] = f
	}
	return f
}

// raiseScript raises the counter to at least ARGV[1] and marks it seeded;
// it answers the counter and whether Redis lost it. Raising is always
// safe: numbers may be skipped, never reused. Redis lost it (also when
// ARGV[5] says so) when the counter is missing where numbers were handed
// out (ARGV[6]), or when the last check ran on another server than ARGV[4]
// names: the counter is then raised ARGV[2] further and pulls settle for
// ARGV[3] ms. Deciding in one script, a flush or a change of server cannot
// fall between the look and the raise.
var raiseScript = redis.NewScript(`
local counter = redis.call('GET', KEYS[1])
local lost = ARGV[5] == '1' or (counter == false and ARGV[6] == '1')
if ARGV[4] ~= '' then
  local seen = redis.call('GET', KEYS[4])
  if seen and seen ~= ARGV[4] then lost = true end
  redis.call('SET', KEYS[4], ARGV[4])
end
local least = tonumber(ARGV[1])
if lost then
  least = least + tonumber(ARGV[2])
  if tonumber(ARGV[3]) > 0 then redis.call('SET', KEYS[3], 1, 'PX', ARGV[3]) end
end
local value = math.max(tonumber(counter or '0'), least)
redis.call('SET', KEYS[1], value)
redis.call('SET', KEYS[2], 1)
if lost then return {value, 1} end
return {value, 0}`)

// check raises tenant's counter in Redis to the tenant's reservation (and to
// every number this process was given), and reserves past the counter when
// the counter is above the reservation. It runs the first time this process
// serves the tenant, whenever Redis turns out to have lost or rewound the
// counter (lost), and after Redis became another server. It answers the
// counter after the raise.
//
// After a loss, unless this process is the only one (SoleProcess), the
// counter is raised a block past the reservation: another process may hold
// a number it took from the old counter and has not reserved yet (Begin
// reserves after taking), at most a few past the reservation. And pulls
// settle for a lease (see Watermark): Redis lost the floors of other
// processes' writes in flight with the counter, so no watermark can vouch
// for them until those writes committed or expired.
func (s *Sequencer) check(ctx context.Context, tenant string, keys tenantKeys, f *flight, lost bool) (int64, error) {
	f.reserving.Lock()
	defer f.reserving.Unlock()
	watched := s.watch.Changes()
	reserved, err := s.store.SyncReserved(ctx, tenant)
	if err != nil {
		return 0, err
	}
	least := reserved
	if reserved == 0 {
		// Numbers handed out before reservations existed: at least the
		// highest stored.
		if least, err = s.store.HighestSeq(ctx, tenant); err != nil {
			return 0, err
		}
	}
	f.mu.Lock()
	least = max(least, f.given)
	f.mu.Unlock()
	var block, settle int64
	if !s.sole {
		block, settle = ReserveBlock, s.lease.Milliseconds()
	}
	if s.watch != nil && s.watch.Server() == "" {
		// A process that has not talked to Redis yet: its first connection
		// names the server the check compares with.
		if err := s.client.Ping(ctx).Err(); err != nil {
			return 0, err
		}
	}
	flag := func(b bool) int {
		if b {
			return 1
		}
		return 0
	}
	// Numbers start at 2: a WatermelonDB client insists on a non-zero
	// timestamp, so an empty tenant's pulls answer 1, below every number.
	raised, err := raiseScript.Run(ctx, s.client, []string{keys.counter, keys.seeded, keys.settle, keys.server},
		max(least, 1), block, settle, s.watch.Server(), flag(lost), flag(least > 0)).Int64Slice()
	if err != nil {
		return 0, err
	}
	counter := raised[0]
	if counter > reserved {
		if reserved, err = s.store.ReserveSync(ctx, tenant, counter+ReserveBlock); err != nil {
			return 0, err
		}
	}
	f.mu.Lock()
	// Every number up to the counter was given by someone: a counter found
	// below it later went back, also in a process that only serves pulls.
	f.given = max(f.given, counter)
	f.mu.Unlock()
	f.reserved = reserved
	f.watched.Store(watched)
	return counter, nil
}

// checked runs check unless this process already did for tenant since
// Redis last became another server.
func (s *Sequencer) checked(ctx context.Context, tenant string, keys tenantKeys, f *flight) error {
	f.reserving.Lock()
	first := f.reserved == 0
	f.reserving.Unlock()
	if !first && f.watched.Load() == s.watch.Changes() {
		return nil
	}
	_, err := s.check(ctx, tenant, keys, f, false)
	return err
}

// reserve makes sure seq is reserved before it is used.
func (s *Sequencer) reserve(ctx context.Context, tenant string, f *flight, seq int64) error {
	f.reserving.Lock()
	defer f.reserving.Unlock()
	if seq <= f.reserved {
		return nil
	}
	reserved, err := s.store.ReserveSync(ctx, tenant, seq+ReserveBlock)
	if err != nil {
		return err
	}
	f.reserved = reserved
	return nil
}

// reservedUpTo returns the reservation, read again from the database when
// the cached one is below at.
func (s *Sequencer) reservedUpTo(ctx context.Context, tenant string, f *flight, at int64) (int64, error) {
	f.reserving.Lock()
	defer f.reserving.Unlock()
	if at <= f.reserved {
		return f.reserved, nil
	}
	reserved, err := s.store.SyncReserved(ctx, tenant)
	if err != nil {
		return 0, err
	}
	f.reserved = max(f.reserved, reserved)
	return f.reserved, nil
}

// Begin takes the next number of tenant and marks it in flight. Call done when
// the write it stamps has committed or failed, in both cases.
func (s *Sequencer) Begin(ctx context.Context, tenant string) (seq int64, done func(), err error) {
	keys := s.keys(tenant)
	f := s.flightOf(tenant)
	if err := s.checked(ctx, tenant, keys, f); err != nil {
		return 0, nil, fmt.Errorf("take sync number of tenant %s: %w", tenant, err)
	}
	seq, id, err := s.startTaking(ctx, keys, f)
	if err == nil && seq == 0 {
		seq, err = s.take(ctx, tenant, keys, f, id)
	}
	if err == nil && seq < 0 { // registered below a number given before: Redis went back
		if _, err = s.check(ctx, tenant, keys, f, true); err == nil {
			s.finish(context.WithoutCancel(ctx), keys, f, -seq)
			return s.Begin(ctx, tenant)
		}
	}
	if err != nil {
		return 0, nil, fmt.Errorf("take sync number of tenant %s: %w", tenant, err)
	}
	done = func() { s.finish(context.WithoutCancel(ctx), keys, f, seq) }
	if err := s.reserve(ctx, tenant, f, seq); err != nil {
		done()
		return 0, nil, fmt.Errorf("reserve sync number %d of tenant %s: %w", seq, tenant, err)
	}
	return seq, done, nil
}

// take takes the number startTaking recorded as being taken (id) with one
// INCR, seeding the counter first when it turns out to be missing.
func (s *Sequencer) take(ctx context.Context, tenant string, keys tenantKeys, f *flight, id int) (int64, error) {
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		var seeded, next *redis.IntCmd
		_, err = s.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
			seeded = p.Exists(ctx, keys.seeded)
			next = p.Incr(ctx, keys.counter)
			return nil
		})
		if err != nil {
			break
		}
		f.mu.Lock()
		// The INCR was sent after this process was given every number below
		// the bound: an answer below it means Redis went back. An answer
		// from a server the last check did not cover may have too.
		rewound := next.Val() < f.taking[id].min
		unchecked := s.watch.Changes() != f.watched.Load()
		if seeded.Val() == 1 && !rewound && !unchecked {
			delete(f.taking, id)
			f.hold(next.Val(), s.now())
			f.mu.Unlock()
			return next.Val(), nil
		}
		f.mu.Unlock()
		// No counter, one recreated from nothing, or one gone back: that
		// number is void.
		var from int64
		if from, err = s.check(ctx, tenant, keys, f, rewound || seeded.Val() != 1); err != nil {
			break
		}
		if err = s.reseeded(ctx, keys, f, from); err != nil {
			break
		}
	}
	if err == nil {
		err = errors.New("sync counter vanished while seeding")
	}
	f.mu.Lock()
	delete(f.taking, id)
	f.mu.Unlock()
	s.finish(context.WithoutCancel(ctx), keys, f, 0)
	return 0, err
}

// registerScript takes the next number for a process that has no floor in
// Redis, writing its floor (that number) in the same step. It answers -1,
// taking nothing, when the counter is not seeded.
var registerScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[2]) == 0 then return -1 end
local seq = redis.call('INCR', KEYS[1])
redis.call('HSET', KEYS[4], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[3], seq, ARGV[1])
return seq`)

// startTaking begins taking a number. A process with nothing in flight takes
// it at once with registerScript, which also writes its floor: the answer is
// then seq. Otherwise the number is recorded as being taken (id), with its
// lower bound, for the caller's INCR. The script is what a lone write costs
// (one round trip, as before floors); writes that overlap skip it.
func (s *Sequencer) startTaking(ctx context.Context, keys tenantKeys, f *flight) (seq int64, id int, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.told == 0 {
		now := s.now()
		seq, err = registerScript.Run(ctx, s.client, []string{keys.counter, keys.seeded, keys.floors, keys.seen},
			s.process, now.UnixMilli()).Int64()
		if err != nil {
			return 0, 0, err
		}
		if seq > 0 && (seq <= f.given || s.watch.Changes() != f.watched.Load()) {
			// Redis went back, or may have (another server answered): answer
			// the void number negated, so the caller checks the counter and
			// takes another.
			f.told, f.toldAt = seq, now
			return -seq, 0, nil
		}
		if seq > 0 {
			f.told, f.toldAt = seq, now
			f.hold(seq, now)
			return seq, 0, nil
		}
	}
	f.nextID++
	f.taking[f.nextID] = bound{min: f.given + 1, at: s.now()}
	return 0, f.nextID, nil
}

// finish takes seq out of flight (0: nothing to take out) and raises this
// process's floor in Redis, or removes it when nothing is left. If Redis
// cannot be reached, the floor stays lower than it need be, which only delays
// pulls, and expires with the lease.
func (s *Sequencer) finish(ctx context.Context, keys tenantKeys, f *flight, seq int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.held, seq)
	floor := s.localFloor(f)
	if floor != f.told || s.now().Sub(f.toldAt) > s.lease/4 {
		_ = s.tell(ctx, keys, f, floor)
	}
}

// localFloor is the lowest number this process holds or is taking (0: none).
// Entries older than the lease belong to writes that can no longer commit
// (their context ended): they hold nothing back. Callers hold f.mu.
func (s *Sequencer) localFloor(f *flight) int64 {
	now := s.now()
	var floor int64
	lower := func(n int64, at time.Time) {
		if now.Sub(at) <= s.lease && (floor == 0 || n < floor) {
			floor = n
		}
	}
	for n, at := range f.held {
		lower(n, at)
	}
	for _, b := range f.taking {
		lower(b.min, b.at)
	}
	return floor
}

// reseeded tells this process's floor again once the counter, found missing,
// was seeded with from: Redis may have lost the floors with it, and numbers
// now count on from there, which may be below numbers this process was given
// before. Every number being taken (again, if its INCR came before the seed)
// will be above from.
func (s *Sequencer) reseeded(ctx context.Context, keys tenantKeys, f *flight, from int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.given = max(f.given, from)
	for id, b := range f.taking {
		b.min = from + 1
		f.taking[id] = b
	}
	return s.tell(ctx, keys, f, s.localFloor(f))
}

// tell writes floor as this process's floor (0: removes it). Callers hold f.mu.
// No transaction is needed: in between the two commands a pull sees the old
// floor with the new time, or no floor once nothing is in flight.
func (s *Sequencer) tell(ctx context.Context, keys tenantKeys, f *flight, floor int64) error {
	now := s.now()
	_, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		if floor == 0 {
			p.ZRem(ctx, keys.floors, s.process)
			p.HDel(ctx, keys.seen, s.process)
			return nil
		}
		p.HSet(ctx, keys.seen, s.process, now.UnixMilli())
		p.ZAdd(ctx, keys.floors, redis.Z{Score: float64(floor), Member: s.process})
		return nil
	})
	if err != nil {
		return fmt.Errorf("write the sync floor: %w", err)
	}
	f.told, f.toldAt = floor, now
	return nil
}

// watermarkScript drops the floors of processes that have not written theirs
// for longer than the lease (they died) and answers one below the lowest
// floor left, or the counter when none is; and the counter itself. While
// pulls settle (see check) it answers -1 and how many ms remain: by Redis's
// clock, the one all processes share.
var watermarkScript = redis.NewScript(`
local now, lease = tonumber(ARGV[1]), tonumber(ARGV[2])
local settle = redis.call('PTTL', KEYS[4])
if settle > 0 then return {-1, settle} end
local counter = tonumber(redis.call('GET', KEYS[1]) or '0')
local floors = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
for i = 1, #floors, 2 do
  local process, floor = floors[i], tonumber(floors[i + 1])
  local seen = tonumber(redis.call('HGET', KEYS[3], process) or '0')
  if now - seen > lease then
    redis.call('ZREM', KEYS[2], process)
    redis.call('HDEL', KEYS[3], process)
  else
    return {floor - 1, counter}
  end
end
return {counter, counter}`)

// Watermark returns the highest number of tenant below which every write has
// committed (or will never commit): a pull may return changes up to it and no
// further, and may then set the device's cursor to it. It is at least 1, and
// never above the tenant's reservation. For a lease after Redis lost its
// data it answers a models.UnavailableError: no watermark can be vouched
// for until the writes other processes had in flight are over.
func (s *Sequencer) Watermark(ctx context.Context, tenant string) (int64, error) {
	w, err := s.watermark(ctx, tenant)
	if err != nil {
		return 0, fmt.Errorf("sync watermark of tenant %s: %w", tenant, err)
	}
	return w, nil
}

func (s *Sequencer) watermark(ctx context.Context, tenant string) (int64, error) {
	k := s.keys(tenant)
	f := s.flightOf(tenant)
	if err := s.checked(ctx, tenant, k, f); err != nil {
		return 0, err
	}
	for attempt := 0; ; attempt++ {
		// Numbers this process is given while the script runs may be above
		// the counter it reads: only those given before can tell a rewind.
		f.mu.Lock()
		givenBefore := f.given
		f.mu.Unlock()
		got, err := watermarkScript.Run(ctx, s.client, []string{k.counter, k.floors, k.seen, k.settle}, s.now().UnixMilli(), s.lease.Milliseconds()).Int64Slice()
		if err != nil {
			return 0, err
		}
		w, counter := got[0], got[1]
		if w < 0 {
			return 0, &models.UnavailableError{RetryAfterSeconds: int((counter + 999) / 1000),
				Reason: "the server lost its sync state and is waiting for the writes under way to finish"}
		}
		rewound := counter < givenBefore
		unchecked := s.watch.Changes() != f.watched.Load()
		if (rewound || unchecked) && attempt == 0 { // Redis lost, rewound or replaced the counter
			if _, err := s.check(ctx, tenant, k, f, rewound); err != nil {
				return 0, err
			}
			continue
		}
		// A number taken and not yet reserved (its Begin is reserving it)
		// may have moved the counter past the reservation: no cursor may.
		reserved, err := s.reservedUpTo(ctx, tenant, f, w)
		if err != nil {
			return 0, err
		}
		w = max(min(w, reserved), 1)
		if s.lag != nil {
			s.lag.WatermarkLag(max(counter-w, 0))
		}
		return w, nil
	}
}
