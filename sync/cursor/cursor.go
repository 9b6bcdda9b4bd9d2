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
package cursor

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultLease bounds how long a write may hold its number in flight.
const DefaultLease = time.Minute

// Sequencer hands out sync numbers per tenant.
type Sequencer struct {
	client redis.UniversalClient
	prefix string
	lease  time.Duration
	now    func() time.Time
	// floor returns the highest number stored in MongoDB for a tenant; it is
	// asked when Redis has no counter (first write, or Redis lost its data).
	floor func(ctx context.Context, tenant string) (int64, error)
}

// New returns a Sequencer keeping its keys under prefix. floor reads the
// highest number already stored for a tenant.
func New(client redis.UniversalClient, prefix string, lease time.Duration, now func() time.Time,
	floor func(ctx context.Context, tenant string) (int64, error)) *Sequencer {
	if lease <= 0 {
		lease = DefaultLease
	}
	if now == nil {
		now = time.Now
	}
	return &Sequencer{client: client, prefix: prefix, lease: lease, now: now, floor: floor}
}

// Lease is how long a write may hold its number; writers give their commit a
// deadline no later than this.
func (s *Sequencer) Lease() time.Duration { return s.lease }

// keys are the tenant's counter and in-flight set. The tenant id is their
// hash tag: the scripts touch both, and on a Redis Cluster the keys of one
// script must live in one slot.
func (s *Sequencer) keys(tenant string) []string {
	return []string{s.prefix + "seq:{" + tenant + "}", s.prefix + "inflight:{" + tenant + "}"}
}

// beginScript takes the next number and marks it in flight with its start time.
// It answers -1, taking nothing, when the counter does not exist, so the caller
// can first seed it from MongoDB.
var beginScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local seq = redis.call('INCR', KEYS[1])
redis.call('ZADD', KEYS[2], seq, seq .. '|' .. ARGV[1])
return seq`)

// seedScript creates the counter at ARGV[1] unless it exists (another replica
// may have seeded it first, and may already have handed out numbers).
var seedScript = redis.NewScript(`
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return 1`)

// Begin takes the next number of tenant and marks it in flight. Call done when
// the write it stamps has committed or failed, in both cases.
func (s *Sequencer) Begin(ctx context.Context, tenant string) (seq int64, done func(), err error) {
	keys := s.keys(tenant)
	for attempt := 0; attempt < 2; attempt++ {
		seq, err = beginScript.Run(ctx, s.client, keys, s.now().UnixMilli()).Int64()
		if err != nil {
			return 0, nil, fmt.Errorf("take sync number of tenant %s: %w", tenant, err)
		}
		if seq > 0 {
			return seq, func() { s.finish(context.WithoutCancel(ctx), keys[1], seq) }, nil
		}
		floor, err := s.floor(ctx, tenant)
		if err != nil {
			return 0, nil, fmt.Errorf("seed sync numbers of tenant %s: %w", tenant, err)
		}
		// Numbers start at 2: a WatermelonDB client insists on a non-zero
		// timestamp, so an empty tenant's pulls answer 1, below every number.
		if err := seedScript.Run(ctx, s.client, keys[:1], max(floor, 1)).Err(); err != nil {
			return 0, nil, fmt.Errorf("seed sync numbers of tenant %s: %w", tenant, err)
		}
	}
	return 0, nil, errors.New("sync counter vanished while seeding")
}

// finish takes seq out of flight: its member, whatever its start time, is
// the one scored seq (one native command: a script here cost a fifth of a
// sync write on the in-process Redis). If Redis cannot be reached, the number
// expires with its lease, which only delays pulls.
func (s *Sequencer) finish(ctx context.Context, key string, seq int64) {
	n := strconv.FormatInt(seq, 10)
	_ = s.client.ZRemRangeByScore(ctx, key, n, n).Err()
}

// watermarkScript drops in-flight numbers older than the lease and answers one
// below the oldest number still in flight, or the counter when none is.
var watermarkScript = redis.NewScript(`
local now, lease = tonumber(ARGV[1]), tonumber(ARGV[2])
local members = redis.call('ZRANGE', KEYS[2], 0, -1)
for _, m in ipairs(members) do
  local sep = string.find(m, '|', 1, true)
  local seq, started = tonumber(string.sub(m, 1, sep - 1)), tonumber(string.sub(m, sep + 1))
  if now - started > lease then
    redis.call('ZREM', KEYS[2], m)
  else
    return seq - 1
  end
end
return tonumber(redis.call('GET', KEYS[1]) or '1')`)

// Watermark returns the highest number of tenant below which every write has
// committed (or will never commit): a pull may return changes up to it and no
// further, and may then set the device's cursor to it. It is at least 1.
func (s *Sequencer) Watermark(ctx context.Context, tenant string) (int64, error) {
	w, err := watermarkScript.Run(ctx, s.client, s.keys(tenant), s.now().UnixMilli(), s.lease.Milliseconds()).Int64()
	if err != nil {
		return 0, fmt.Errorf("sync watermark of tenant %s: %w", tenant, err)
	}
	return w, nil
}

// baseTTL is how long the server remembers where a device stood before a pull;
// a device that pushes later than that gets its conflicts judged from the
// cursor it pushes with.
const baseTTL = 7 * 24 * time.Hour

func (s *Sequencer) baseKey(kind, tenant, user, device string, cursor int64) string {
	return fmt.Sprintf("%sbase:%s:%s:%s:%s:%d", s.prefix, kind, tenant, user, device, cursor)
}

// RememberPull records that a device pulled from `from` and got `to`, so that
// its next push (sent with last_pulled_at = to) is judged against what the
// device had before this round's pull. WatermelonDB applies a pull under the
// device's own changes, so only the cursor before the round tells a concurrent
// server edit from one the device had seen. Pages of one round share its start.
func (s *Sequencer) RememberPull(ctx context.Context, tenant, user, device string, from, to int64, more bool) error {
	base := from
	if v, err := s.client.Get(ctx, s.baseKey("page", tenant, user, device, from)).Int64(); err == nil {
		base = v
	}
	start := s.RoundBase(ctx, tenant, user, device, from)
	if more {
		if err := s.client.Set(ctx, s.baseKey("start", tenant, user, device, to), start, baseTTL).Err(); err != nil {
			return fmt.Errorf("remember pull of device %s: %w", device, err)
		}
	}
	if base == 0 {
		// A first sync: the device held none of the server's records before,
		// so it can only have edited what this round brought it.
		base = to
	}
	kind := "round"
	if more {
		kind = "page"
	}
	if err := s.client.Set(ctx, s.baseKey(kind, tenant, user, device, to), base, baseTTL).Err(); err != nil {
		return fmt.Errorf("remember pull of device %s: %w", device, err)
	}
	return nil
}

// RoundBase returns where the device stood when the sync round that `from`
// belongs to began: `from` itself, unless `from` is a page cursor of a round
// still paging (0 for a first sync that is paging).
func (s *Sequencer) RoundBase(ctx context.Context, tenant, user, device string, from int64) int64 {
	if v, err := s.client.Get(ctx, s.baseKey("start", tenant, user, device, from)).Int64(); err == nil {
		return v
	}
	return from
}

// RememberNewTables records, for the next page of a migration pull that
// stopped at `to`, the tables the device's schema gained: their records are
// new to it on every page of the round, whatever their age.
func (s *Sequencer) RememberNewTables(ctx context.Context, tenant, user, device string, to int64, tables []string) error {
	if len(tables) == 0 {
		return nil
	}
	if err := s.client.Set(ctx, s.baseKey("new-tables", tenant, user, device, to), strings.Join(tables, ","), baseTTL).Err(); err != nil {
		return fmt.Errorf("remember migration of device %s: %w", device, err)
	}
	return nil
}

// NewTables returns what RememberNewTables recorded for a pull from `from`.
func (s *Sequencer) NewTables(ctx context.Context, tenant, user, device string, from int64) []string {
	v, err := s.client.Get(ctx, s.baseKey("new-tables", tenant, user, device, from)).Result()
	if err != nil || v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

// PushBase returns the cursor a device stood at before the pull that gave it
// pushedAt, or pushedAt itself when the server does not know.
func (s *Sequencer) PushBase(ctx context.Context, tenant, user, device string, pushedAt int64) int64 {
	if v, err := s.client.Get(ctx, s.baseKey("round", tenant, user, device, pushedAt)).Int64(); err == nil {
		return v
	}
	return pushedAt
}
