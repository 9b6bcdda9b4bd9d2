package notify

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fieldcrm/fieldcrm/models"
)

// reminderStore is where reminders are the truth (package store).
type reminderStore interface {
	Reminder(ctx context.Context, id string) (models.Reminder, error)
	PutReminder(ctx context.Context, r models.Reminder) error
}

// Schedule is the Redis index of reminders by fire time, and the claims of
// the workers sending them. Its keys share one hash tag, so one Lua script may
// touch them all on Redis Cluster:
//
//	due:<second>: reminder id → fire time (ms), the reminders of one second
//	buckets:      <second> → <second>, the seconds that have a due set
//	where:        reminder id → its <second>, to move or remove it
//	claimed:      reminder id → end of the claim (ms)
//
// Why buckets and not one sorted set: miniredis, the embedded Redis, sorts a
// whole sorted set for every range query, under the lock every command takes.
// With 100,000 reminders falling due in one minute, each claim of 200 sorted
// all of them, and the burst went at one claim per 30 ms however many workers
// ran. A claim now sorts the seconds that have reminders, then one second's.
//
// A worker claims due reminders by moving them from their due sets to claimed
// in one script: of several workers, each reminder goes to one. A claim that
// runs out (its worker died mid-send) is moved back to due by the next claim,
// and another worker sends it. MongoDB holds the truth; Reconcile restores
// this index from it when Redis lost it. The worker checks every claimed
// reminder against MongoDB, so an entry left where it no longer belongs (two
// moves racing) costs one look, never a wrong push.
type Schedule struct {
	client   redis.UniversalClient
	prefix   string // up to and including the hash tag
	claimFor time.Duration
	now      func() time.Time
}

// DefaultClaim is how long a worker holds a claimed reminder before another
// worker may take it over.
const DefaultClaim = 30 * time.Second

// NewSchedule keeps its keys under prefix.
func NewSchedule(client redis.UniversalClient, prefix string, claimFor time.Duration, now func() time.Time) *Schedule {
	if claimFor <= 0 {
		claimFor = DefaultClaim
	}
	if now == nil {
		now = time.Now
	}
	return &Schedule{client: client, prefix: prefix + "{reminders}:", claimFor: claimFor, now: now}
}

func (s *Schedule) key(name string) string { return s.prefix + name }

// bucket is the second a fire time falls in, as the key suffix.
func bucket(ms int64) string { return strconv.FormatInt(ms/1000, 10) }

// Add puts (or moves) reminder id at fireAt.
func (s *Schedule) Add(ctx context.Context, id string, fireAt time.Time) error {
	return s.AddMany(ctx, map[string]time.Time{id: fireAt})
}

// AddMany puts (or moves) many reminders in two round trips: one
// transaction files each under its second and reads where it was; a second
// takes the moved ones out of their old seconds. Two moves of one reminder
// racing each other still leave it in one place: the transactions order
// them, and each takes out what the one before it filed.
func (s *Schedule) AddMany(ctx context.Context, fireAt map[string]time.Time) error {
	if len(fireAt) == 0 {
		return nil
	}
	type move struct {
		id, to string
		was    *redis.StringCmd
	}
	moves := make([]move, 0, len(fireAt))
	_, err := s.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for id, at := range fireAt {
			ms := at.UnixMilli()
			b := bucket(ms)
			m := move{id: id, to: b, was: p.HGet(ctx, s.key("where"), id)}
			p.HSet(ctx, s.key("where"), id, b)
			p.ZAdd(ctx, s.key("due:"+b), redis.Z{Score: float64(ms), Member: id})
			p.ZAdd(ctx, s.key("buckets"), redis.Z{Score: float64(ms / 1000), Member: b})
			moves = append(moves, m)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("schedule %d reminders: %w", len(fireAt), err)
	}
	var stale []func(redis.Pipeliner)
	for _, m := range moves {
		if was, err := m.was.Result(); err == nil && was != m.to {
			stale = append(stale, func(p redis.Pipeliner) { p.ZRem(ctx, s.key("due:"+was), m.id) })
		}
	}
	return s.pipeline(ctx, "move reminders", stale)
}

// pipeline sends cmds in one round trip; an emptied due set stays in buckets
// until a claim finds it empty.
func (s *Schedule) pipeline(ctx context.Context, what string, cmds []func(redis.Pipeliner)) error {
	if len(cmds) == 0 {
		return nil
	}
	_, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, c := range cmds {
			c(p)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// ensureScript files a reminder under its second unless the schedule knows
// it already (due at any time, or claimed).
var ensureScript = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], ARGV[2]) == 1 or redis.call('ZSCORE', KEYS[2], ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[4], ARGV[4], ARGV[3])
return 1`)

// Ensure puts reminder id at fireAt unless the schedule has it already (due,
// perhaps later for a retry, or claimed by a worker): the repair Reconcile
// makes, which must not undo a retry's wait.
func (s *Schedule) Ensure(ctx context.Context, id string, fireAt time.Time) error {
	ms := fireAt.UnixMilli()
	b := bucket(ms)
	keys := []string{s.key("where"), s.key("claimed"), s.key("due:" + b), s.key("buckets")}
	if err := ensureScript.Run(ctx, s.client, keys, ms, id, b, ms/1000).Err(); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("schedule reminder %s: %w", id, err)
	}
	return nil
}

// Remove takes reminder id off the schedule.
func (s *Schedule) Remove(ctx context.Context, id string) error {
	var was *redis.StringCmd
	_, err := s.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		was = p.HGet(ctx, s.key("where"), id)
		p.HDel(ctx, s.key("where"), id)
		return nil
	})
	if errors.Is(err, redis.Nil) {
		return nil // not scheduled
	}
	if err != nil {
		return fmt.Errorf("unschedule reminder %s: %w", id, err)
	}
	if err := s.client.ZRem(ctx, s.key("due:"+was.Val()), id).Err(); err != nil {
		return fmt.Errorf("unschedule reminder %s: %w", id, err)
	}
	return nil
}

// claimScript returns up to ARGV[3] reminders due at ARGV[1] (ms), moving
// them to the claimed set until ARGV[2]. It first returns expired claims to
// the due set of this second, due at once, and files the entries of the
// single due set of earlier versions under their seconds. The keys of the
// seconds are built here from KEYS[1], the prefix, inside the hash tag.
var claimScript = redis.NewScript(`
local prefix, now, untl, limit = KEYS[1], tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local where, buckets, claimed = prefix .. 'where', prefix .. 'buckets', prefix .. 'claimed'
local function file(id, ms)
  local sec = math.floor(ms / 1000)
  local b = string.format('%d', sec)
  local was = redis.call('HGET', where, id)
  if was and was ~= b then redis.call('ZREM', prefix .. 'due:' .. was, id) end
  redis.call('HSET', where, id, b)
  redis.call('ZADD', prefix .. 'due:' .. b, ms, id)
  redis.call('ZADD', buckets, sec, b)
end
local legacy = redis.call('ZRANGE', prefix .. 'due', 0, 999, 'WITHSCORES')
for i = 1, #legacy, 2 do
  redis.call('ZREM', prefix .. 'due', legacy[i])
  if redis.call('HEXISTS', where, legacy[i]) == 0 then file(legacy[i], tonumber(legacy[i + 1])) end
end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', claimed, '-inf', now)) do
  redis.call('ZREM', claimed, id)
  if redis.call('HEXISTS', where, id) == 0 then file(id, now) end
end
local out = {}
for _, b in ipairs(redis.call('ZRANGEBYSCORE', buckets, '-inf', math.floor(now / 1000))) do
  local key = prefix .. 'due:' .. b
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', key, '-inf', now, 'LIMIT', 0, limit - #out)) do
    redis.call('ZREM', key, id)
    if redis.call('HGET', where, id) == b then redis.call('HDEL', where, id) end
    redis.call('ZADD', claimed, untl, id)
    out[#out + 1] = id
  end
  if redis.call('EXISTS', key) == 0 then redis.call('ZREM', buckets, b) end
  if #out >= limit then break end
end
return out`)

// Claim takes up to limit reminders that are due, for this worker alone
// until the claim runs out. The worker calls Done for each.
func (s *Schedule) Claim(ctx context.Context, limit int) ([]string, error) {
	now := s.now()
	ids, err := claimScript.Run(ctx, s.client, []string{s.prefix},
		now.UnixMilli(), now.Add(s.claimFor).UnixMilli(), limit).StringSlice()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("claim due reminders: %w", err)
	}
	return ids, nil
}

// backlogScript counts the reminders due at ARGV[1] (ms) that no worker has
// claimed: those in the due sets of every second up to now, below now.
var backlogScript = redis.NewScript(`
local prefix, now = KEYS[1], tonumber(ARGV[1])
local n = 0
for _, b in ipairs(redis.call('ZRANGEBYSCORE', prefix .. 'buckets', '-inf', math.floor(now / 1000))) do
  n = n + redis.call('ZCOUNT', prefix .. 'due:' .. b, '-inf', now)
end
return n`)

// Backlog counts the reminders that are due and that no worker has claimed
// yet: near 0 while the workers keep up. It reads one count per second that
// has due reminders, so it costs more the longer the workers are behind.
func (s *Schedule) Backlog(ctx context.Context) (int64, error) {
	n, err := backlogScript.Run(ctx, s.client, []string{s.prefix}, s.now().UnixMilli()).Int64()
	if err != nil {
		return 0, fmt.Errorf("count due reminders: %w", err)
	}
	return n, nil
}

// Done releases the claim on id.
func (s *Schedule) Done(ctx context.Context, id string) error {
	if err := s.client.ZRem(ctx, s.key("claimed"), id).Err(); err != nil {
		return fmt.Errorf("release reminder %s: %w", id, err)
	}
	return nil
}

// Next returns when the earliest scheduled reminder fires, or false. It looks
// through the seconds in order, past any emptied one a claim has not dropped
// yet (dropping it here could race an Add into it).
func (s *Schedule) Next(ctx context.Context) (time.Time, bool, error) {
	seconds, err := s.client.ZRange(ctx, s.key("buckets"), 0, -1).Result()
	if err != nil {
		return time.Time{}, false, fmt.Errorf("next reminder: %w", err)
	}
	for _, b := range seconds {
		earliest, err := s.client.ZRangeWithScores(ctx, s.key("due:"+b), 0, 0).Result()
		if err != nil {
			return time.Time{}, false, fmt.Errorf("next reminder: %w", err)
		}
		if len(earliest) > 0 {
			return time.UnixMilli(int64(earliest[0].Score)), true, nil
		}
	}
	return time.Time{}, false, nil
}

// Scheduler keeps the reminders of tasks and tickets in line with them: it is
// told of every change (package crm calls TaskChanged and TicketChanged after
// each write, on every path: REST, sync, cascades), and Reconcile repairs what
// a crash between a write and that call missed, and what Redis lost.
type Scheduler struct {
	store    schedulerStore
	schedule *Schedule
	now      func() time.Time
}

// schedulerStore is the scheduler's persistence (package store).
type schedulerStore interface {
	reminderStore
	Tenant(ctx context.Context, id string) (models.Tenant, error)
}

// NewScheduler returns a Scheduler.
func NewScheduler(st schedulerStore, schedule *Schedule, now func() time.Time) *Scheduler {
	if now == nil {
		now = time.Now
	}
	return &Scheduler{store: st, schedule: schedule, now: now}
}

func (s *Scheduler) settings(ctx context.Context, tenant string) (models.ReminderSettings, error) {
	st, err := s.tenantSettings(ctx, tenant)
	return st.Reminders, err
}

func (s *Scheduler) tenantSettings(ctx context.Context, tenant string) (models.Settings, error) {
	t, err := s.store.Tenant(ctx, tenant)
	if err != nil {
		return models.Settings{}, fmt.Errorf("settings of tenant %s: %w", tenant, err)
	}
	return t.Settings.WithDefaults(), nil
}

// TaskChanged schedules, moves or cancels the reminders of task t.
func (s *Scheduler) TaskChanged(ctx context.Context, t models.Task) error {
	st, err := s.settings(ctx, t.TenantID)
	if err != nil {
		return err
	}
	return s.apply(ctx, models.Reminder{TenantID: t.TenantID, TaskID: t.ID, UserID: t.AssigneeID},
		t.ID, models.TaskReminderKinds, models.PlanTaskReminders(&t, st))
}

// TicketChanged schedules, moves or cancels the SLA reminders of ticket t.
func (s *Scheduler) TicketChanged(ctx context.Context, t models.Ticket) error {
	st, err := s.settings(ctx, t.TenantID)
	if err != nil {
		return err
	}
	return s.apply(ctx, models.Reminder{TenantID: t.TenantID, TicketID: t.ID, UserID: t.AssigneeID},
		t.ID, models.TicketReminderKinds, models.PlanTicketReminders(&t, st))
}

// apply makes the stored reminders of one subject match plan: each kind
// planned is scheduled at its time (moved if it was elsewhere), and every
// other kind still pending is cancelled. base carries the subject's fields.
func (s *Scheduler) apply(ctx context.Context, base models.Reminder, subject string, kinds []string, plan []models.PlannedReminder) error {
	planned := map[string]time.Time{}
	for _, p := range plan {
		planned[p.Kind] = p.FireAt
	}
	for _, kind := range kinds {
		id := models.ReminderID(base.TenantID, subject, kind)
		current, err := s.store.Reminder(ctx, id)
		if err != nil && !errors.Is(err, models.ErrNotFound) {
			return err
		}
		exists := err == nil
		fireAt, wanted := planned[kind]
		switch {
		case wanted && exists && current.FireAt.Equal(fireAt) && current.UserID == base.UserID && current.State != models.ReminderCancelled:
			// Already scheduled (or sent) for this time and person; make sure
			// the index has it while it is pending.
			if current.State == models.ReminderScheduled {
				if err := s.schedule.Ensure(ctx, id, fireAt); err != nil {
					return err
				}
			}
		case wanted:
			r := base
			r.ID, r.Kind, r.FireAt, r.State, r.UpdatedAt = id, kind, fireAt, models.ReminderScheduled, s.now().UTC()
			// The truth first: a crash before the index is written is repaired
			// by Reconcile; the other order could fire a reminder MongoDB does
			// not know.
			if err := s.store.PutReminder(ctx, r); err != nil {
				return err
			}
			if err := s.schedule.Add(ctx, id, fireAt); err != nil {
				return err
			}
		case exists && current.State == models.ReminderScheduled:
			current.State, current.UpdatedAt = models.ReminderCancelled, s.now().UTC()
			if err := s.schedule.Remove(ctx, id); err != nil {
				return err
			}
			if err := s.store.PutReminder(ctx, current); err != nil {
				return err
			}
		}
	}
	return nil
}

// ScheduleDigest makes sure manager user has their next digest scheduled: at
// the tenant's digest time in the manager's time zone.
func (s *Scheduler) ScheduleDigest(ctx context.Context, u models.User) error {
	tenant, err := s.tenantSettings(ctx, u.TenantID)
	if err != nil {
		return err
	}
	st, u := tenant.Reminders, u.InTenant(tenant)
	subject := models.DigestSubject(u.ID)
	if u.Role != models.RoleManager || !u.Active {
		return s.apply(ctx, models.Reminder{TenantID: u.TenantID, UserID: u.ID}, subject, []string{models.NotifyDigest}, nil)
	}
	current, err := s.store.Reminder(ctx, models.ReminderID(u.TenantID, subject, models.NotifyDigest))
	if err == nil && current.State == models.ReminderScheduled && current.FireAt.After(s.now()) {
		return s.schedule.Ensure(ctx, current.ID, current.FireAt)
	}
	if err != nil && !errors.Is(err, models.ErrNotFound) {
		return err
	}
	loc := u.Location()
	next := models.NextLocal(s.now(), st.DigestTime, loc)
	return s.apply(ctx, models.Reminder{TenantID: u.TenantID, UserID: u.ID}, subject, []string{models.NotifyDigest},
		[]models.PlannedReminder{{Kind: models.NotifyDigest, FireAt: next}})
}

// Reconcile makes the schedule match the truth: every open task's and ticket's
// reminders are (re)written to MongoDB where missing and put back into Redis,
// and every manager has a digest coming. It runs at start-up and
// periodically, so a Redis that was emptied, restarted without persistence or
// replaced loses no reminder. Nothing is sent twice: what was sent is
// recorded per device and firing (see Worker). It returns how many subjects
// it went through.
func (s *Scheduler) Reconcile(ctx context.Context, db directory) (int, error) {
	tenants, err := db.TenantIDs(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, tenant := range tenants {
		st, err := s.settings(ctx, tenant)
		if err != nil {
			return n, err
		}
		err = db.EachTask(ctx, tenant, func(t models.Task) error {
			if len(models.PlanTaskReminders(&t, st)) == 0 {
				return nil // closed: the worker cancels leftovers when they fall due
			}
			n++
			return s.TaskChanged(ctx, t)
		})
		if err != nil {
			return n, err
		}
		err = db.EachTicket(ctx, tenant, func(t models.Ticket) error {
			if len(models.PlanTicketReminders(&t, st)) == 0 {
				return nil
			}
			n++
			return s.TicketChanged(ctx, t)
		})
		if err != nil {
			return n, err
		}
		managers, err := db.Managers(ctx, tenant)
		if err != nil {
			return n, err
		}
		for _, m := range managers {
			n++
			if err := s.ScheduleDigest(ctx, m); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}
