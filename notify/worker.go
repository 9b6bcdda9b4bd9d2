package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	gosync "sync"
	"time"

	"github.com/fieldcrm/fieldcrm/models"
	"github.com/fieldcrm/fieldcrm/sync/store"
)

// Pusher delivers one push (FCM, or LogPusher when FCM is not configured).
type Pusher interface {
	Push(ctx context.Context, m Message) error
}

// workerStore is what sending needs from MongoDB (package store).
type workerStore interface {
	reminderStore
	User(ctx context.Context, tenant, id string) (models.User, error)
	ClaimDelivery(ctx context.Context, d store.Delivery) error
	DeliveryOf(ctx context.Context, id string) (store.Delivery, error)
	PutDelivery(ctx context.Context, d store.Delivery) error
}

// crmReader reads tasks and writes the inbox (package crm).
type crmReader interface {
	Task(ctx context.Context, tenant, id string) (models.Task, error)
	Notify(ctx context.Context, n models.Notification, id string) (models.Notification, error)
}

// deviceRegistry lists a user's devices and drops the dead ones (Devices).
type deviceRegistry interface {
	List(ctx context.Context, tenant, user string) ([]models.Device, error)
	drop(ctx context.Context, tenant, user, deviceID, token string) error
}

// MaxAttempts is how often a reminder is tried before it is marked failed
// (FCM kept answering 429 or 5xx): about half an hour of backoff in all.
const MaxAttempts = 8

// Worker sends due reminders: to every device of the recipient through the
// Pusher, and to their inbox. Every API process runs one (several may share
// one Redis and database: the schedule's claims give each reminder to one
// worker, and the delivery records make each push happen once per device).
type Worker struct {
	store    workerStore
	crm      crmReader
	devices  deviceRegistry
	schedule *Schedule
	push     Pusher
	now      func() time.Time
	log      *slog.Logger
	// Batch is how many reminders one claim takes; Parallel how many are sent
	// at once; Idle the longest wait between two looks at the schedule.
	Batch, Parallel int
	Idle            time.Duration
}

// NewWorker returns a Worker.
func NewWorker(st workerStore, crm crmReader, devices deviceRegistry, schedule *Schedule, push Pusher, now func() time.Time, log *slog.Logger) *Worker {
	if now == nil {
		now = time.Now
	}
	return &Worker{store: st, crm: crm, devices: devices, schedule: schedule, push: push, now: now, log: log,
		Batch: 200, Parallel: 16, Idle: 100 * time.Millisecond}
}

// Run sends reminders as they fall due until ctx ends.
func (w *Worker) Run(ctx context.Context) {
	for ctx.Err() == nil {
		n, err := w.RunOnce(ctx)
		if err != nil && ctx.Err() == nil {
			w.log.ErrorContext(ctx, "reminder worker", "err", err)
		}
		if n == w.Batch {
			continue // more may be due right now
		}
		select {
		case <-ctx.Done():
		case <-time.After(w.Idle):
		}
	}
}

// RunOnce claims what is due now and sends it; it returns how many reminders
// it claimed.
func (w *Worker) RunOnce(ctx context.Context) (int, error) {
	ids, err := w.schedule.Claim(ctx, w.Batch)
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	sem := make(chan struct{}, w.Parallel)
	var wg gosync.WaitGroup
	for _, id := range ids {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := w.send(ctx, id); err != nil {
				// The claim stays: it runs out and the reminder is tried again.
				w.log.ErrorContext(ctx, "send reminder", "reminder", id, "err", err)
				return
			}
			if err := w.schedule.Done(ctx, id); err != nil {
				w.log.ErrorContext(ctx, "release reminder", "reminder", id, "err", err)
			}
		}()
	}
	wg.Wait()
	return len(ids), nil
}

// send handles one claimed reminder.
func (w *Worker) send(ctx context.Context, id string) error {
	r, err := w.store.Reminder(ctx, id)
	if errors.Is(err, models.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	now := w.now()
	switch {
	case r.State != models.ReminderScheduled:
		return nil // cancelled, sent or failed meanwhile
	case r.FireAt.After(now):
		return w.schedule.Add(ctx, id, r.FireAt) // rescheduled later meanwhile
	}
	task, err := w.crm.Task(ctx, r.TenantID, r.TaskID)
	if err != nil && !errors.Is(err, models.ErrNotFound) {
		return err
	}
	if err != nil || !plans(&task, r) {
		// The task was done, cancelled, deleted or moved, and the change that
		// did it has not reached the scheduler (a crash in between).
		r.State, r.UpdatedAt = models.ReminderCancelled, now.UTC()
		return w.store.PutReminder(ctx, r)
	}
	user, err := w.store.User(ctx, r.TenantID, r.UserID)
	if err != nil {
		return err
	}
	loc, err := time.LoadLocation(user.TimeZone)
	if err != nil {
		loc = time.UTC
	}
	title, body := models.TaskReminderText(r.Kind, user.Locale, loc, &task)
	note := models.Notification{UserID: r.UserID, Kind: r.Kind, Title: title, Body: body,
		TaskID: task.ID, CustomerID: task.CustomerID, CollapseKey: "task:" + task.ID}
	note.TenantID = r.TenantID
	note, err = w.crm.Notify(ctx, note, models.IDFor(r.ID, strconv.FormatInt(r.FireAt.UnixMilli(), 10)))
	if err != nil {
		return fmt.Errorf("inbox of user %s: %w", r.UserID, err)
	}
	msg := Message{Title: title, Body: body, CollapseKey: note.CollapseKey, Data: map[string]string{
		"kind": r.Kind, "notification_id": note.ID, "task_id": task.ID, "customer_id": task.CustomerID}}
	devices, err := w.devices.List(ctx, r.TenantID, r.UserID)
	if err != nil {
		return err
	}
	var retry *RetryError
	for _, dev := range devices {
		msg.Token = dev.FCMToken
		err := w.deliver(ctx, r, dev, msg)
		var re *RetryError
		switch {
		case errors.As(err, &re):
			if retry == nil || re.After > retry.After {
				retry = re
			}
		case err != nil:
			return err
		}
	}
	r.UpdatedAt = w.now().UTC()
	if retry == nil {
		sent := r.UpdatedAt
		r.State, r.SentAt = models.ReminderSent, &sent
		return w.store.PutReminder(ctx, r)
	}
	r.Attempts++
	r.LastError = retry.Error()
	if r.Attempts >= MaxAttempts {
		r.State = models.ReminderFailed
		return w.store.PutReminder(ctx, r)
	}
	if err := w.store.PutReminder(ctx, r); err != nil {
		return err
	}
	return w.schedule.Add(ctx, id, w.now().Add(max(retry.After, backoff(r.Attempts))))
}

// deliver pushes msg to one device once: the delivery record, inserted before
// the push, is the claim. A claim left by a worker that died before pushing is
// taken over once it is older than the schedule's claim; a push that reached
// FCM but whose worker died before recording it is sent again then (FCM's
// collapse key makes the phone show it once).
func (w *Worker) deliver(ctx context.Context, r models.Reminder, dev models.Device, msg Message) error {
	id := models.DeliveryID(r.ID, r.FireAt, dev.DeviceID)
	now := w.now()
	d := store.Delivery{ID: id, State: "claimed", At: now.UnixMilli()}
	err := w.store.ClaimDelivery(ctx, d)
	if errors.Is(err, models.ErrConflict) {
		prev, gerr := w.store.DeliveryOf(ctx, id)
		if gerr != nil {
			return gerr
		}
		retrying := prev.State == "retry"
		abandoned := prev.State == "claimed" && now.Sub(time.UnixMilli(prev.At)) > w.schedule.claimFor
		if !retrying && !abandoned {
			return nil // sent, failed for good, or being sent by another worker
		}
		err = w.store.PutDelivery(ctx, d)
	}
	if err != nil {
		return err
	}
	perr := w.push.Push(ctx, msg)
	var retry *RetryError
	switch {
	case perr == nil:
		d.State = "sent"
	case errors.Is(perr, ErrTokenGone):
		d.State, d.Error = "failed", perr.Error()
		if err := w.devices.drop(ctx, r.TenantID, r.UserID, dev.DeviceID, dev.FCMToken); err != nil {
			return err
		}
		w.log.InfoContext(ctx, "removed a device FCM no longer knows", "user", r.UserID, "device", dev.DeviceID)
	case errors.As(perr, &retry):
		d.State, d.Error = "retry", perr.Error()
	default:
		d.State, d.Error = "failed", perr.Error()
		w.log.WarnContext(ctx, "push failed", "reminder", r.ID, "device", dev.DeviceID, "err", perr)
	}
	d.At = w.now().UnixMilli()
	if err := w.store.PutDelivery(ctx, d); err != nil {
		return err
	}
	if retry != nil {
		return retry
	}
	return nil
}

// plans reports whether the task still calls for reminder r.
func plans(t *models.Task, r models.Reminder) bool {
	for _, p := range models.PlanReminders(t) {
		if p.Kind == r.Kind && p.FireAt.Equal(r.FireAt) && t.AssigneeID == r.UserID {
			return true
		}
	}
	return false
}

// backoff is the wait before attempt n+1: exponential from 2 s, with jitter,
// at most 10 minutes.
func backoff(attempt int) time.Duration {
	d := min(2*time.Second<<min(attempt-1, 9), 10*time.Minute)
	return d/2 + rand.N(d/2)
}
