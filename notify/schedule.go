package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
// the workers sending them. Two sorted sets share one hash tag, so one Lua
// script may touch both on Redis Cluster:
//
//	due:     reminder id → fire time (ms)
//	claimed: reminder id → end of the claim (ms)
//
// A worker claims due reminders by moving them from due to claimed in one
// script: of several workers, each reminder goes to one. A claim that runs out
// (its worker died mid-send) is moved back to due by the next claim, and
// another worker sends it. MongoDB holds the truth; Rebuild restores this
// index from it when Redis lost it.
type Schedule struct {
	client   redis.UniversalClient
	due      string
	claimed  string
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
	return &Schedule{client: client, due: prefix + "{reminders}:due", claimed: prefix + "{reminders}:claimed", claimFor: claimFor, now: now}
}

// Add puts (or moves) reminder id at fireAt.
func (s *Schedule) Add(ctx context.Context, id string, fireAt time.Time) error {
	if err := s.client.ZAdd(ctx, s.due, redis.Z{Score: float64(fireAt.UnixMilli()), Member: id}).Err(); err != nil {
		return fmt.Errorf("schedule reminder %s: %w", id, err)
	}
	return nil
}

// ensureScript puts a reminder on the due set unless it is there or claimed.
var ensureScript = redis.NewScript(`
if redis.call('ZSCORE', KEYS[2], ARGV[2]) then return 0 end
return redis.call('ZADD', KEYS[1], 'NX', ARGV[1], ARGV[2])`)

// Ensure puts reminder id at fireAt unless the schedule has it already (due,
// perhaps later for a retry, or claimed by a worker): the repair Reconcile
// makes, which must not undo a retry's wait.
func (s *Schedule) Ensure(ctx context.Context, id string, fireAt time.Time) error {
	if err := ensureScript.Run(ctx, s.client, []string{s.due, s.claimed}, fireAt.UnixMilli(), id).Err(); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("schedule reminder %s: %w", id, err)
	}
	return nil
}

// Remove takes reminder id off the schedule.
func (s *Schedule) Remove(ctx context.Context, id string) error {
	if err := s.client.ZRem(ctx, s.due, id).Err(); err != nil {
		return fmt.Errorf("unschedule reminder %s: %w", id, err)
	}
	return nil
}

// claimScript returns up to ARGV[3] reminders due at ARGV[1] (ms), moving
// them to the claimed set until ARGV[2]; it first returns expired claims to
// the due set, due at once.
var claimScript = redis.NewScript(`
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
for _, id in ipairs(expired) do
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZADD', KEYS[1], 'NX', ARGV[1], id)
end
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(due) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZADD', KEYS[2], ARGV[2], id)
end
return due`)

// Claim takes up to limit reminders that are due, for this worker alone
// until the claim runs out. The worker calls Done for each.
func (s *Schedule) Claim(ctx context.Context, limit int) ([]string, error) {
	now := s.now()
	ids, err := claimScript.Run(ctx, s.client, []string{s.due, s.claimed},
		now.UnixMilli(), now.Add(s.claimFor).UnixMilli(), limit).StringSlice()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("claim due reminders: %w", err)
	}
	return ids, nil
}

// Done releases the claim on id.
func (s *Schedule) Done(ctx context.Context, id string) error {
	if err := s.client.ZRem(ctx, s.claimed, id).Err(); err != nil {
		return fmt.Errorf("release reminder %s: %w", id, err)
	}
	return nil
}

// Next returns when the earliest scheduled reminder fires, or false.
func (s *Schedule) Next(ctx context.Context) (time.Time, bool, error) {
	first, err := s.client.ZRangeWithScores(ctx, s.due, 0, 0).Result()
	if err != nil {
		return time.Time{}, false, fmt.Errorf("next reminder: %w", err)
	}
	if len(first) == 0 {
		return time.Time{}, false, nil
	}
	return time.UnixMilli(int64(first[0].Score)), true, nil
}

// Scheduler keeps a task's reminders in line with the task: it is told of
// every task change (package crm calls TaskChanged after each write, on every
// path: REST, sync, cascades), and Reconcile repairs what a crash between the
// task's write and that call missed.
type Scheduler struct {
	store    reminderStore
	schedule *Schedule
	now      func() time.Time
	log      *slog.Logger
}

// NewScheduler returns a Scheduler.
func NewScheduler(st reminderStore, schedule *Schedule, now func() time.Time, log *slog.Logger) *Scheduler {
	if now == nil {
		now = time.Now
	}
	return &Scheduler{store: st, schedule: schedule, now: now, log: log}
}

// TaskChanged schedules, moves or cancels the reminders of task t.
func (s *Scheduler) TaskChanged(ctx context.Context, t models.Task) error {
	planned := map[string]time.Time{}
	for _, p := range models.PlanReminders(&t) {
		planned[p.Kind] = p.FireAt
	}
	for _, kind := range models.ReminderKinds {
		id := models.ReminderID(t.TenantID, t.ID, kind)
		current, err := s.store.Reminder(ctx, id)
		if err != nil && !errors.Is(err, models.ErrNotFound) {
			return err
		}
		exists := err == nil
		fireAt, wanted := planned[kind]
		switch {
		case wanted && exists && current.FireAt.Equal(fireAt) && current.UserID == t.AssigneeID && current.State != models.ReminderCancelled:
			// Already scheduled (or sent) for this time and person; make sure
			// the index has it while it is pending.
			if current.State == models.ReminderScheduled {
				if err := s.schedule.Ensure(ctx, id, fireAt); err != nil {
					return err
				}
			}
		case wanted:
			r := models.Reminder{ID: id, TenantID: t.TenantID, TaskID: t.ID, Kind: kind, UserID: t.AssigneeID,
				FireAt: fireAt, DueAt: t.DueAt, State: models.ReminderScheduled, UpdatedAt: s.now().UTC()}
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

// taskScanner pages through every tenant's tasks (package store).
type taskScanner interface {
	TenantIDs(ctx context.Context) ([]string, error)
	Changes(ctx context.Context, coll, tenant string, after, upTo int64, limit int, out any) error
}

// Reconcile makes the schedule match the tasks: every open task's reminders
// are (re)written to MongoDB where missing and put back into Redis. It runs
// at start-up and periodically, so a Redis that was emptied, restarted
// without persistence or replaced loses no reminder. Nothing is sent twice:
// what was sent is recorded per device and firing (see Worker).
func (s *Scheduler) Reconcile(ctx context.Context, tasks taskScanner, coll string) (int, error) {
	tenants, err := tasks.TenantIDs(ctx)
	if err != nil {
		return 0, err
	}
	const page = 1000
	n := 0
	for _, tenant := range tenants {
		for after := int64(0); ; {
			var batch []models.Task
			if err := tasks.Changes(ctx, coll, tenant, after, 1<<62, page, &batch); err != nil {
				return n, err
			}
			for i := range batch {
				after = batch[i].Seq
				if len(models.PlanReminders(&batch[i])) == 0 {
					continue // closed tasks: the worker cancels their leftovers when they fall due
				}
				if err := s.TaskChanged(ctx, batch[i]); err != nil {
					return n, err
				}
				n++
			}
			if len(batch) < page {
				break
			}
		}
	}
	return n, nil
}
