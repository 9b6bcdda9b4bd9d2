package notify

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fieldcrm/fieldcrm/internal/crm"
	"github.com/fieldcrm/fieldcrm/models"
)

// Pusher delivers one push (FCM, or LogPusher when FCM is not configured).
type Pusher interface {
	Push(ctx context.Context, m Message) error
}

// workerStore is what sending keeps in storage (package store): the
// reminders and the record of each delivery.
type workerStore interface {
	reminderStore
	ClaimDelivery(ctx context.Context, d models.Delivery) error
	DeliveryOf(ctx context.Context, id string) (models.Delivery, error)
	PutDelivery(ctx context.Context, d models.Delivery) error
	RecordFiring(ctx context.Context, r models.Reminder, deliveries []models.Delivery) error
}

// crmReader is what sending asks of the CRM (package crm): the directory
// of people and work, the tenant's settings, and the inbox it writes to.
type crmReader interface {
	directory
	TenantSettings(ctx context.Context, tenant string) (models.Settings, error)
	Notify(ctx context.Context, n models.Notification, id string) (models.Notification, error)
}

// deviceRegistry lists a user's devices and drops the dead ones (Devices).
type deviceRegistry interface {
	List(ctx context.Context, tenant, user string) ([]models.Device, error)
	drop(ctx context.Context, tenant, user, deviceID, token string) error
}

// Metrics hears what the worker does, for an operator's dashboards and
// alerts (package telemetry implements it). Labels must stay few: kinds,
// providers and outcomes, never users or tenants.
type Metrics interface {
	// ReminderSent: a reminder of kind reached every device of its
	// recipient, lateness after it was due.
	ReminderSent(kind string, lateness time.Duration)
	// ReminderFailed: a reminder was given up after MaxAttempts.
	ReminderFailed(kind string)
	// Escalated: a reminder of kind went to the recipient's manager.
	Escalated(kind string)
	// DigestSent: a manager's daily digest was sent.
	DigestSent()
	// Push starts one push through provider; the function it returns is
	// called with the outcome: PushSent, PushInvalidToken, PushRetried or
	// PushFailed.
	Push(ctx context.Context, provider string) (context.Context, func(outcome string))
}

// Outcomes of one push, as Metrics hears them.
const (
	PushSent         = "sent"
	PushInvalidToken = "invalid_token"
	PushRetried      = "retried"
	PushFailed       = "failed"
)

// noMetrics is the Metrics of a worker no one watches.
type noMetrics struct{}

func (noMetrics) ReminderSent(string, time.Duration) {}
func (noMetrics) ReminderFailed(string)              {}
func (noMetrics) Escalated(string)                   {}
func (noMetrics) DigestSent()                        {}
func (noMetrics) Push(ctx context.Context, _ string) (context.Context, func(string)) {
	return ctx, func(string) {}
}

// ProviderOf names p's provider for the metrics: its Provider method's
// answer, or "other".
func ProviderOf(p Pusher) string {
	if named, ok := p.(interface{ Provider() string }); ok {
		return named.Provider()
	}
	return "other"
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
	// digests schedules a manager's next digest once one is sent.
	digests *Scheduler
	now     func() time.Time
	log     *slog.Logger
	// Batch is the most reminders one claim takes; Parallel how many are sent
	// at once; Idle the longest wait between two looks at the schedule.
	// Parallel is high because a sent reminder waits mostly on the push and
	// on its turn in the database's group commit, and the more reminders
	// share one commit the fewer commits a burst needs.
	Batch, Parallel int
	Idle            time.Duration
	// Drain is how long the sends under way when Run's context ends may go
	// on (default DefaultDrain): a push the process was told to stop in the
	// middle of completes and is recorded, rather than failing and being
	// pushed again by another worker once its claim runs out.
	Drain time.Duration
	// Alone says this worker's process is the only one that sends (embedded
	// storage with in-process Redis): a push claimed before it started was
	// claimed by a process that died, and is taken over at once rather than
	// when the claim runs out.
	Alone bool
	// Metrics hears of what is sent (NewWorker's reports to no one); set it
	// before Run.
	Metrics Metrics
	// provider names push's provider in Metrics.
	provider string
	// started is when this worker was made; see Alone.
	started time.Time
	// zones are the recipients' time zones, each loaded once.
	zones zones
	// lastTurn is when Run last went round its loop (Unix nanoseconds, wall
	// clock); see LastTurn.
	lastTurn atomic.Int64
}

// LastTurn is when Run last went round its loop: at least every Idle when
// there is nothing to send, and whenever a send frees a slot. A worker whose
// sends all hang turns no more; /healthz watches this.
func (w *Worker) LastTurn() time.Time { return time.Unix(0, w.lastTurn.Load()) }

// settingsFor is how long the streaming worker goes on using the tenant
// settings it read: claims under load are of a reminder or two, and reading
// the tenant for each was a read of its own per reminder. An admin's change
// of reminder settings applies to the reminders fired from at most that long
// after it.
const settingsFor = 250 * time.Millisecond

// zones remembers the time zones it has loaded: time.LoadLocation reads and
// parses the zone's file on every call, which was 4% of a fired reminder's
// CPU.
type zones struct{ byName sync.Map }

// of returns the time zone of u (UTC when it names none this machine knows).
func (z *zones) of(u models.User) *time.Location {
	if loc, ok := z.byName.Load(u.TimeZone); ok {
		return loc.(*time.Location)
	}
	loc := u.Location()
	z.byName.Store(u.TimeZone, loc)
	return loc
}

// NewWorker returns a Worker.
func NewWorker(st workerStore, crm crmReader, devices deviceRegistry, scheduler *Scheduler, push Pusher, now func() time.Time, log *slog.Logger) *Worker {
	if now == nil {
		now = time.Now
	}
	w := &Worker{store: st, crm: crm, devices: devices, schedule: scheduler.schedule, digests: scheduler, push: push, now: now, log: log,
		Batch: 256, Parallel: 256, Idle: 100 * time.Millisecond, started: now(), Metrics: noMetrics{}, provider: ProviderOf(push)}
	w.lastTurn.Store(time.Now().UnixNano())
	return w
}

// Run sends reminders as they fall due until ctx ends. It keeps up to
// Parallel reminders in flight and claims more as soon as some finish, so
// that one slow push does not hold up the next claim (with claim-then-wait
// batches, every batch waited for its slowest reminder while the writer sat
// idle). When a claim finds fewer due than it asked for, it waits Idle.
func (w *Worker) Run(ctx context.Context) {
	slots := make(chan struct{}, w.Parallel)
	// Sends run on a context that outlives ctx by Drain: Run stops claiming
	// when ctx ends and returns once the sends under way are done.
	sends, stopSends := outliving(ctx, cmp.Or(w.Drain, DefaultDrain))
	defer stopSends()
	// The reminders sent in the next settingsFor share one read of each
	// tenant's settings.
	settingsCtx, settingsSince := sends, time.Time{}
	var inFlight sync.WaitGroup
	defer inFlight.Wait()
	for ctx.Err() == nil {
		w.lastTurn.Store(time.Now().UnixNano())
		select {
		case slots <- struct{}{}: // at least one slot is free
		case <-ctx.Done():
			return
		}
		want := min(w.Batch, 1+cap(slots)-len(slots))
		ids, err := w.schedule.Claim(ctx, want)
		if err != nil && ctx.Err() == nil {
			w.log.ErrorContext(ctx, "reminder worker", "err", err)
		}
		if time.Since(settingsSince) > settingsFor {
			settingsCtx, settingsSince = crm.SettingsOnce(sends), time.Now()
		}
		sendCtx := settingsCtx // this claim's, for its goroutines
		for i, id := range ids {
			if i > 0 {
				slots <- struct{}{} // free when counted; taken by nobody else
			}
			inFlight.Add(1)
			go func() {
				defer func() { <-slots; inFlight.Done() }()
				w.sendAndRelease(sendCtx, id)
			}()
		}
		if len(ids) == 0 {
			<-slots
		}
		if len(ids) < want {
			select {
			case <-ctx.Done():
			case <-time.After(w.Idle):
			}
		}
	}
}

// DefaultDrain is Worker.Drain's default: within the 20 s a process is
// given to shut down (FIELDCRM_SHUTDOWN_TIMEOUT), with room for FCM's own
// timeout of a send.
const DefaultDrain = 15 * time.Second

// outliving returns a context that is not cancelled with ctx but drain
// after it, and a stop that cancels it at once (call it when done).
func outliving(ctx context.Context, drain time.Duration) (context.Context, func()) {
	out, cancel := context.WithCancel(context.WithoutCancel(ctx))
	// A timer left pending by stop only cancels what stop cancelled already.
	stopAfter := context.AfterFunc(ctx, func() { time.AfterFunc(drain, cancel) })
	return out, func() { stopAfter(); cancel() }
}

// RunOnce claims what is due now (up to Batch) and sends it, Parallel at a
// time; it returns how many reminders it claimed.
func (w *Worker) RunOnce(ctx context.Context) (int, error) {
	ids, err := w.schedule.Claim(ctx, w.Batch)
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	// A batch reads each tenant's settings once: they were two reads of the
	// tenant per reminder, a seventh of a burst's CPU.
	ctx = crm.SettingsOnce(ctx)
	sem := make(chan struct{}, w.Parallel)
	var wg sync.WaitGroup
	for _, id := range ids {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			w.sendAndRelease(ctx, id)
		}()
	}
	wg.Wait()
	return len(ids), nil
}

// sendAndRelease sends one claimed reminder and releases its claim; on an
// error the claim stays, runs out, and the reminder is tried again.
func (w *Worker) sendAndRelease(ctx context.Context, id string) {
	if err := w.send(ctx, id); err != nil {
		w.log.ErrorContext(ctx, "send reminder", "reminder", id, "err", err)
		return
	}
	if err := w.schedule.Done(ctx, id); err != nil {
		w.log.ErrorContext(ctx, "release reminder", "reminder", id, "err", err)
	}
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
	f, err := w.compose(ctx, r)
	if err != nil {
		return err
	}
	if f.recipient.ID == "" {
		// The subject no longer calls for it (a task done, a ticket resolved,
		// a manager no longer one), and the change that did it has not reached
		// the scheduler (a crash in between).
		r.State, r.UpdatedAt = models.ReminderCancelled, now.UTC()
		return w.store.PutReminder(ctx, r)
	}
	loc := w.zones.of(f.recipient)
	note := f.note
	note.Title, note.Body = models.NotificationText(r.Kind, f.recipient.Locale, loc, f.text)
	note.TenantID, note.UserID, note.Kind = r.TenantID, f.recipient.ID, r.Kind
	note, err = w.crm.Notify(ctx, note, models.IDFor(r.ID, strconv.FormatInt(r.FireAt.UnixMilli(), 10)))
	if err != nil {
		return fmt.Errorf("inbox of user %s: %w", f.recipient.ID, err)
	}
	// In the recipient's quiet hours the inbox has it now; the push waits.
	if end, quiet := f.recipient.QuietHours.EndsAfter(now, loc); quiet && !f.urgent {
		return w.schedule.Add(ctx, id, end)
	}
	msg := Message{Title: note.Title, Body: note.Body, CollapseKey: note.CollapseKey, Data: map[string]string{
		"kind": r.Kind, "notification_id": note.ID}}
	for k, v := range map[string]string{"task_id": note.TaskID, "ticket_id": note.TicketID, "customer_id": note.CustomerID} {
		if v != "" {
			msg.Data[k] = v
		}
	}
	devices, err := w.devices.List(ctx, r.TenantID, f.recipient.ID)
	if err != nil {
		return err
	}
	var retry *RetryError
	var claimed time.Time // the latest a push claimed by another worker may still be sent until
	var outcomes []models.Delivery
	for _, dev := range devices {
		msg.Token = dev.FCMToken
		d, err := w.deliver(ctx, r, dev, msg)
		if d != nil {
			outcomes = append(outcomes, *d)
		}
		var re *RetryError
		var ce *claimedError
		switch {
		case errors.As(err, &re):
			if retry == nil || re.After > retry.After {
				retry = re
			}
		case errors.As(err, &ce):
			if ce.until.After(claimed) {
				claimed = ce.until
			}
		case err != nil:
			if len(outcomes) > 0 {
				_ = w.store.RecordFiring(ctx, r, outcomes) // keep what was sent; the reminder stays claimed
			}
			return err
		}
	}
	r.UpdatedAt = w.now().UTC()
	switch {
	case retry == nil && claimed.IsZero():
		sent := r.UpdatedAt
		r.State, r.SentAt = models.ReminderSent, &sent
	case retry == nil:
		// Sent to every device but those another worker claimed: not an
		// attempt. It is looked at again when their claims run out, and
		// sent to them then unless that worker recorded them sent.
	case r.Attempts+1 >= MaxAttempts:
		r.Attempts++
		r.State, r.LastError = models.ReminderFailed, retry.Error()
	default:
		r.Attempts++
		r.LastError = retry.Error()
	}
	if err := w.store.RecordFiring(ctx, r, outcomes); err != nil {
		return err
	}
	w.count(r, f, loc)
	switch {
	case r.State == models.ReminderScheduled && retry == nil:
		return w.schedule.Add(ctx, id, claimed.Add(time.Millisecond))
	case r.State == models.ReminderScheduled:
		return w.schedule.Add(ctx, id, w.now().Add(max(retry.After, backoff(r.Attempts))))
	case r.State == models.ReminderSent && r.Kind == models.NotifyDigest && w.digests != nil:
		return w.digests.ScheduleDigest(ctx, f.recipient) // tomorrow's
	}
	return nil
}

// count tells Metrics what became of reminder r, just recorded. Its
// lateness is counted from its due time, or from the end of the
// recipient's quiet hours when it fell due in them (and was not urgent):
// waiting for those is no delay of the worker's.
func (w *Worker) count(r models.Reminder, f firing, loc *time.Location) {
	switch r.State {
	case models.ReminderFailed:
		w.Metrics.ReminderFailed(r.Kind)
	case models.ReminderSent:
		due := r.FireAt
		if end, quiet := f.recipient.QuietHours.EndsAfter(r.FireAt, loc); quiet && !f.urgent {
			due = end
		}
		w.Metrics.ReminderSent(r.Kind, r.SentAt.Sub(due))
		if f.escalated {
			w.Metrics.Escalated(r.Kind)
		}
		if r.Kind == models.NotifyDigest {
			w.Metrics.DigestSent()
		}
	}
}

// firing is what a due reminder turns into, decided when it fires.
type firing struct {
	// recipient is who gets it; zero when the reminder is no longer wanted.
	recipient models.User
	note      models.Notification
	text      models.TextArgs
	urgent    bool
	// escalated says the recipient is the subject's assignee's manager
	// (or theirs).
	escalated bool
}

// compose decides, by kind, whether a due reminder is still wanted, who gets
// it and what it says.
func (w *Worker) compose(ctx context.Context, r models.Reminder) (firing, error) {
	st, err := w.crm.TenantSettings(ctx, r.TenantID)
	if err != nil {
		return firing{}, err
	}
	settings := st.Reminders
	var f firing
	switch r.Kind {
	case models.NotifyTaskDue, models.NotifyTaskReminder, models.NotifyTaskOverdue, models.NotifyTaskOverdueAgain:
		task, err := w.crm.Task(ctx, r.TenantID, r.TaskID)
		if errors.Is(err, models.ErrNotFound) || (err == nil && !planned(models.PlanTaskReminders(&task, settings), r, task.AssigneeID)) {
			return firing{}, nil
		}
		if err != nil {
			return firing{}, err
		}
		f.note = models.Notification{TaskID: task.ID, CustomerID: task.CustomerID, CollapseKey: "task:" + task.ID}
		f.text = models.TextArgs{Subject: task.Title, At: task.DueAt}
		f.urgent = models.Urgent(r.Kind, "")
		levels := map[string]int{models.NotifyTaskOverdue: 1, models.NotifyTaskOverdueAgain: 2}[r.Kind]
		if levels > 0 {
			f.note.CollapseKey = "overdue:" + task.ID
		}
		f.escalated = levels > 0
		f.recipient, f.text.Person, err = w.escalate(ctx, r.TenantID, task.AssigneeID, levels)
		f.recipient = f.recipient.InTenant(st)
		return f, err
	case models.NotifySLAWarning, models.NotifySLABreach:
		ticket, err := w.crm.Ticket(ctx, r.TenantID, r.TicketID)
		if errors.Is(err, models.ErrNotFound) || (err == nil && !planned(models.PlanTicketReminders(&ticket, settings), r, ticket.AssigneeID)) {
			return firing{}, nil
		}
		if err != nil {
			return firing{}, err
		}
		f.note = models.Notification{TicketID: ticket.ID, CustomerID: ticket.CustomerID, CollapseKey: "sla:" + ticket.ID}
		f.text = models.TextArgs{Subject: ticket.Title, At: ticket.SLADueAt}
		f.urgent = models.Urgent(r.Kind, ticket.Priority)
		levels := 0
		if r.Kind == models.NotifySLABreach {
			levels = 1
		}
		f.escalated = levels > 0
		f.recipient, f.text.Person, err = w.escalate(ctx, r.TenantID, ticket.AssigneeID, levels)
		f.recipient = f.recipient.InTenant(st)
		return f, err
	case models.NotifyDigest:
		manager, err := w.crm.User(ctx, r.TenantID, r.UserID)
		if errors.Is(err, models.ErrNotFound) || (err == nil && (manager.Role != models.RoleManager || !manager.Active)) {
			return firing{}, nil
		}
		if err != nil {
			return firing{}, err
		}
		manager = manager.InTenant(st)
		counts, err := w.digest(ctx, manager)
		if err != nil {
			return firing{}, err
		}
		f.recipient, f.text = manager, models.TextArgs{Digest: counts}
		f.note = models.Notification{CollapseKey: "digest"}
		return f, nil
	}
	return firing{}, fmt.Errorf("reminder %s: unknown kind %q", r.ID, r.Kind)
}

// planned reports whether plan still holds reminder r for the same person.
func planned(plan []models.PlannedReminder, r models.Reminder, assignee string) bool {
	for _, p := range plan {
		if p.Kind == r.Kind && p.FireAt.Equal(r.FireAt) && assignee == r.UserID {
			return true
		}
	}
	return false
}

// escalate returns the user levels steps up the management line from user
// (0: the user; 1: their manager; 2: the manager's manager), and the name of
// user. Zero when there is nobody that high, or they are inactive.
func (w *Worker) escalate(ctx context.Context, tenant, user string, levels int) (models.User, string, error) {
	u, err := w.crm.User(ctx, tenant, user)
	if errors.Is(err, models.ErrNotFound) {
		return models.User{}, "", nil
	}
	if err != nil {
		return models.User{}, "", err
	}
	name := u.Name
	for range levels {
		boss := u.ManagerID
		if boss == "" && u.TeamID != "" {
			team, err := w.crm.Team(ctx, tenant, u.TeamID)
			if err != nil && !errors.Is(err, models.ErrNotFound) {
				return models.User{}, "", err
			}
			boss = team.ManagerID
		}
		if boss == "" || boss == u.ID {
			return models.User{}, name, nil
		}
		if u, err = w.crm.User(ctx, tenant, boss); err != nil {
			if errors.Is(err, models.ErrNotFound) {
				return models.User{}, name, nil
			}
			return models.User{}, "", err
		}
	}
	if !u.Active {
		return models.User{}, name, nil
	}
	return u, name, nil
}

// digest counts what a manager's teams have on: follow-ups due today (in
// the manager's time zone) and overdue, customers won in the last day, and
// open tickets past their SLA.
func (w *Worker) digest(ctx context.Context, manager models.User) (models.DigestCounts, error) {
	members, err := w.crm.TeamMembers(ctx, manager.TenantID, manager.ID)
	if err != nil || len(members) == 0 {
		return models.DigestCounts{}, err
	}
	ids := make([]string, len(members))
	for i, m := range members {
		ids[i] = m.ID
	}
	now := w.now()
	local := now.In(w.zones.of(manager))
	dayStart := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, local.Location())
	return w.crm.DigestCounts(ctx, manager.TenantID, ids, dayStart, now)
}

// deliver pushes msg to one device once: the delivery record, inserted before
// the push, is the claim. A claim left by a worker that died before pushing is
// taken over once it is older than the schedule's claim (at once by a worker
// Alone); a push that reached FCM but whose worker died before recording it
// is sent again then (FCM's collapse key makes the phone show it once). While
// another worker's claim runs, the push is neither sent nor done: deliver
// returns a *claimedError, and the reminder is looked at again after it. It
// returns the delivery's outcome for the caller to record, or nil when there
// was nothing to do.
func (w *Worker) deliver(ctx context.Context, r models.Reminder, dev models.Device, msg Message) (*models.Delivery, error) {
	id := models.DeliveryID(r.ID, r.FireAt, dev.DeviceID)
	now := w.now()
	d := models.Delivery{ID: id, State: "claimed", At: now.UnixMilli()}
	err := w.store.ClaimDelivery(ctx, d)
	if errors.Is(err, models.ErrConflict) {
		prev, gerr := w.store.DeliveryOf(ctx, id)
		if gerr != nil {
			return nil, gerr
		}
		retrying := prev.State == "retry"
		at := time.UnixMilli(prev.At)
		abandoned := prev.State == "claimed" && (now.Sub(at) > w.schedule.claimFor || (w.Alone && at.Before(w.started)))
		switch {
		case prev.State == "claimed" && !abandoned:
			// Another worker is sending it, or died before it could say
			// whether it did: which one shows when its claim runs out.
			// Taking the reminder as sent would lose the push if it died.
			return nil, &claimedError{until: at.Add(w.schedule.claimFor)}
		case !retrying && !abandoned:
			return nil, nil // sent, or failed for good
		}
		err = w.store.PutDelivery(ctx, d)
	}
	if err != nil {
		return nil, err
	}
	pushCtx, pushed := w.Metrics.Push(ctx, w.provider)
	perr := w.push.Push(pushCtx, msg)
	var retry *RetryError
	switch {
	case perr == nil:
		pushed(PushSent)
		d.State = "sent"
	case errors.Is(perr, ErrTokenGone):
		pushed(PushInvalidToken)
		d.State, d.Error = "failed", perr.Error()
		if err := w.devices.drop(ctx, r.TenantID, r.UserID, dev.DeviceID, dev.FCMToken); err != nil {
			return &d, err
		}
		w.log.InfoContext(ctx, "removed a device FCM no longer knows", "user", r.UserID, "device", dev.DeviceID)
	case errors.As(perr, &retry):
		pushed(PushRetried)
		d.State, d.Error = "retry", perr.Error()
	default:
		pushed(PushFailed)
		d.State, d.Error = "failed", perr.Error()
		w.log.WarnContext(ctx, "push failed", "reminder", r.ID, "device", dev.DeviceID, "err", perr)
	}
	d.At = w.now().UnixMilli()
	if retry != nil {
		return &d, retry
	}
	return &d, nil
}

// claimedError means another worker claimed a push, until until.
type claimedError struct{ until time.Time }

func (e *claimedError) Error() string {
	return "the push is claimed by another worker until " + e.until.Format(time.RFC3339Nano)
}

// backoff is the wait before attempt n+1: exponential from 2 s, with jitter,
// at most 10 minutes.
func backoff(attempt int) time.Duration {
	d := min(2*time.Second<<min(attempt-1, 9), 10*time.Minute)
	return d/2 + rand.N(d/2)
}
