package notify

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fieldcrm/fieldcrm/models"
	"github.com/fieldcrm/fieldcrm/sync/store"
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

// AddMany puts many reminders on the schedule in one round trip (bulk loads).
func (s *Schedule) AddMany(ctx context.Context, fireAt map[string]time.Time) error {
	zs := make([]redis.Z, 0, len(fireAt))
	for id, at := range fireAt {
		zs = append(zs, redis.Z{Score: float64(at.UnixMilli()), Member: id})
	}
	if err := s.client.ZAdd(ctx, s.due, zs...).Err(); err != nil {
		return fmt.Errorf("schedule %d reminders: %w", len(zs), err)
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
	t, err := s.store.Tenant(ctx, tenant)
	if err != nil {
		return models.ReminderSettings{}, fmt.Errorf("reminder settings of tenant %s: %w", tenant, err)
	}
	return t.Settings.WithDefaults().Reminders, nil
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
	st, err := s.settings(ctx, u.TenantID)
	if err != nil {
		return err
	}
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

// scanner pages through every tenant's tasks, tickets and users (package store).
type scanner interface {
	TenantIDs(ctx context.Context) ([]string, error)
	Changes(ctx context.Context, coll, tenant string, after, upTo int64, limit int, out any) error
	Users(ctx context.Context, tenant string, f store.UserFilter) ([]models.User, error)
}

// Reconcile makes the schedule match the truth: every open task's and ticket's
// reminders are (re)written to MongoDB where missing and put back into Redis,
// and every manager has a digest coming. It runs at start-up and
// periodically, so a Redis that was emptied, restarted without persistence or
// replaced loses no reminder. Nothing is sent twice: what was sent is
// recorded per device and firing (see Worker). It returns how many subjects
// it went through.
func (s *Scheduler) Reconcile(ctx context.Context, db scanner) (int, error) {
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
		err = eachRecord(ctx, db, store.Tasks, tenant, func(t *models.Task) error {
			if len(models.PlanTaskReminders(t, st)) == 0 {
				return nil // closed: the worker cancels leftovers when they fall due
			}
			n++
			return s.TaskChanged(ctx, *t)
		})
		if err != nil {
			return n, err
		}
		err = eachRecord(ctx, db, store.Tickets, tenant, func(t *models.Ticket) error {
			if len(models.PlanTicketReminders(t, st)) == 0 {
				return nil
			}
			n++
			return s.TicketChanged(ctx, *t)
		})
		if err != nil {
			return n, err
		}
		managers, err := db.Users(ctx, tenant, store.UserFilter{Role: models.RoleManager})
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

// eachRecord calls f on every record of coll in tenant, in pages.
func eachRecord[R any](ctx context.Context, db scanner, coll, tenant string, f func(*R) error) error {
	const page = 1000
	for after := int64(0); ; {
		var batch []R
		if err := db.Changes(ctx, coll, tenant, after, 1<<62, page, &batch); err != nil {
			return err
		}
		for i := range batch {
			after = models.MetaOf(&batch[i]).Seq
			if err := f(&batch[i]); err != nil {
				return err
			}
		}
		if len(batch) < page {
			return nil
		}
	}
}
