package notify_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/fieldcrm/fieldcrm/internal/app"
	"github.com/fieldcrm/fieldcrm/internal/app/apptest"
	"github.com/fieldcrm/fieldcrm/internal/crm"
	"github.com/fieldcrm/fieldcrm/internal/store"
	"github.com/fieldcrm/fieldcrm/internal/testenv"
	"github.com/fieldcrm/fieldcrm/models"
	"github.com/fieldcrm/fieldcrm/notify"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

// replica is one fieldcrm process's reminder machinery: its own connections
// to the shared database and Redis, its own CRM service, scheduler and worker.
type replica struct {
	store     *store.Store
	crm       *crm.Service
	schedule  *notify.Schedule
	scheduler *notify.Scheduler
	devices   *notify.Devices
	worker    *notify.Worker
}

// world is a tenant with a rep who has a customer, a fake FCM, and one
// replica (more with another()).
type world struct {
	t *testing.T
	// now is the replicas' clock: nil is the real one.
	now      func() time.Time
	db       string
	rd       *testenv.Redis
	fcm      *fakeFCM
	rep      models.Actor
	customer string
	*replica
}

func newWorld(t *testing.T) *world { return newWorldAt(t, nil) }

// newWorldAt is newWorld on the clock now (nil: the real one).
func newWorldAt(t *testing.T, now func() time.Time) *world {
	t.Helper()
	w := &world{t: t, now: now, rd: env.Redis(t), fcm: newFakeFCM(t)}
	if now != nil {
		w.fcm.now = now
	}
	st := env.Store(t)
	w.db = st.DatabaseName()
	w.replica = w.replicaOn(st)
	ctx := context.Background()
	tenant := models.Tenant{ID: models.NewID(), Name: "Acme", CreatedAt: time.Now().UTC()}
	if err := st.CreateTenant(ctx, tenant); err != nil {
		t.Fatal(err)
	}
	rep := models.User{ID: models.NewID(), TenantID: tenant.ID, Email: "rep@acme.test", Name: "Rep", Role: models.RoleRep,
		TimeZone: "Asia/Shanghai", Locale: "zh-CN", Active: true, PasswordHash: "x", CreatedAt: time.Now().UTC(), UpdatedAt: time.Now().UTC()}
	if err := st.CreateUser(ctx, rep); err != nil {
		t.Fatal(err)
	}
	w.rep = models.Actor{UserID: rep.ID, TenantID: tenant.ID, Role: models.RoleRep}
	c, err := w.crm.CreateCustomer(ctx, w.rep, models.Customer{CustomerFields: models.CustomerFields{Name: "Wang Fang"}}, false)
	if err != nil {
		t.Fatal(err)
	}
	w.customer = c.ID
	return w
}

// another is a second process on the same database and Redis.
func (w *world) another() *replica {
	w.t.Helper()
	cfg := env.StoreConfigFor(w.t, w.db)
	st, err := store.Open(context.Background(), cfg)
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { _ = st.Close(context.Background()) })
	return w.replicaOn(st)
}

// replicaOn builds the application on st, the world's Redis and clock, and
// FCM, with a short claim and idle wait so that tests run quickly.
func (w *world) replicaOn(st *store.Store) *replica {
	w.t.Helper()
	cfg := apptest.Config()
	cfg.ReminderClaim = 2 * time.Second
	cfg.FCM = notify.FCMConfig{ProjectID: "test-project", Endpoint: w.fcm.srv.URL}
	a := apptest.New(w.t, cfg, st, w.rd, app.WithClock(w.now))
	a.Worker.Idle = 20 * time.Millisecond
	return &replica{store: st, crm: a.CRM, schedule: a.Schedule, scheduler: a.Scheduler, devices: a.Devices, worker: a.Worker}
}

// run runs the replica's worker until the test ends.
func (r *replica) run(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.worker.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

func (w *world) device(id, token string) {
	w.t.Helper()
	if _, err := w.devices.Register(context.Background(), w.rep, models.Device{DeviceID: id, FCMToken: token, Platform: models.PlatformAndroid}); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) task(title string, due time.Time) models.Task {
	w.t.Helper()
	t, err := w.crm.Tasks.Create(context.Background(), w.rep, models.Task{ChildFields: models.ChildFields{CustomerID: w.customer}, Title: title, DueAt: due})
	if err != nil {
		w.t.Fatal(err)
	}
	return t
}

// start is where the controlled clocks of these tests begin: a Monday at
// 10:00 in Shanghai, outside anyone's quiet hours.
var start = time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)

// runAt sets the clock to at and lets the replicas' workers, side by side,
// claim and send until none finds anything due: the state a test then reads
// is the state at instant at, however fast the machine is.
func (w *world) runAt(clock *testenv.Clock, at time.Time, replicas ...*replica) {
	w.t.Helper()
	clock.Set(at)
	if len(replicas) == 0 {
		replicas = []*replica{w.replica}
	}
	// A worker that keeps finding work at a frozen instant is a bug (a
	// reminder filed again as due at once); fail rather than spin.
	for round := 0; ; round++ {
		if round == 1000 {
			w.t.Fatalf("the workers still claim reminders at %s after %d rounds", at, round)
		}
		claimed := make([]int, len(replicas))
		errs := make([]error, len(replicas))
		var wg sync.WaitGroup
		for i, r := range replicas {
			wg.Add(1)
			go func() {
				defer wg.Done()
				claimed[i], errs[i] = r.worker.RunOnce(context.Background())
			}()
		}
		wg.Wait()
		total := 0
		for i := range replicas {
			if errs[i] != nil {
				w.t.Fatalf("worker %d at %s: %v", i, at, errs[i])
			}
			total += claimed[i]
		}
		if total == 0 {
			return
		}
	}
}

// reminderState reads what became of a task's due reminder.
func (w *world) reminderState(taskID string) models.Reminder {
	w.t.Helper()
	r, err := w.store.Reminder(context.Background(), models.ReminderID(w.rep.TenantID, taskID, models.NotifyTaskDue))
	if err != nil {
		w.t.Fatalf("reminder of task %s: %v", taskID, err)
	}
	return r
}

// waitFor polls cond until it holds or d passes; only the wall-clock smoke
// test of the worker loop uses it.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return cond()
}

// The worker loop itself (Run, with its idle waits) on the wall clock: a
// reminder due shortly is pushed once it is due, not before. The other tests
// drive the worker on a controlled clock and check exact instants; this one
// only checks the loop is wired to the clock and the schedule, so its bound
// is generous.
func TestWorkerLoopSendsADueReminderOnTheWallClock(t *testing.T) {
	w := newWorld(t)
	w.device("phone", "token-phone")
	w.run(t)
	due := time.Now().Add(300 * time.Millisecond).Truncate(time.Millisecond)
	task := w.task("回访王芳", due)
	if !waitFor(30*time.Second, func() bool { return w.reminderState(task.ID).State == models.ReminderSent }) {
		t.Fatalf("the reminder was not sent: %+v; pushes %+v", w.reminderState(task.ID), w.fcm.pushes())
	}
	got := w.fcm.pushes()
	if len(got) != 1 || got[0].Data["task_id"] != task.ID {
		t.Fatalf("pushes %+v, want the task's one", got)
	}
	if got[0].At.Before(due) {
		t.Fatalf("pushed at %s, before its due time %s", got[0].At, due)
	}
}

// A worker told to stop while a push is under way finishes that push and
// records it sent before Run returns, so no other worker pushes it again
// once its claim runs out.
func TestStoppedWorkerFinishesThePushUnderWay(t *testing.T) {
	w := newWorld(t)
	w.device("phone", "token-phone")
	hold := make(chan struct{})
	var release sync.Once
	answer := func() { release.Do(func() { close(hold) }) }
	t.Cleanup(answer) // before the fake FCM closes, which waits for a held request
	w.fcm.mu.Lock()
	w.fcm.hold, w.fcm.arrived = hold, make(chan struct{}, 8)
	w.fcm.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.worker.Run(ctx); close(done) }()
	task := w.task("回访王芳", time.Now().Add(100*time.Millisecond))

	select {
	case <-w.fcm.arrived:
	case <-time.After(30 * time.Second):
		t.Fatal("the reminder was never pushed")
	}
	cancel() // SIGTERM, with the push at FCM
	select {
	case <-done:
		t.Fatal("Run returned with a push under way")
	case <-time.After(100 * time.Millisecond):
	}
	answer() // FCM answers
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return once the push was answered")
	}
	if r := w.reminderState(task.ID); r.State != models.ReminderSent {
		t.Fatalf("after the drained push the reminder is %+v, want sent", r)
	}
	// Another worker, later, finds nothing to send.
	w.fcm.mu.Lock()
	w.fcm.hold = nil
	w.fcm.mu.Unlock()
	if _, err := w.worker.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := w.fcm.pushes(); len(got) != 1 {
		t.Fatalf("pushes %+v, want the one drained", got)
	}
}

func TestReminderArrivesAtItsDueTimeAndLandsInTheInbox(t *testing.T) {
	clock := testenv.NewClock(start)
	w := newWorldAt(t, clock.Now)
	w.device("phone", "token-phone")
	w.device("tablet", "token-tablet")
	due := start.Add(10 * time.Minute)
	task := w.task("回访王芳", due)

	w.runAt(clock, due.Add(-time.Millisecond))
	if got := w.fcm.pushes(); len(got) != 0 {
		t.Fatalf("pushed before the due time: %+v", got)
	}
	w.runAt(clock, due)
	got := w.fcm.pushes()
	if len(got) != 2 || got[0].Token == got[1].Token {
		t.Fatalf("pushes at the due time: %+v, want one to each device", got)
	}
	for _, p := range got {
		if !p.At.Equal(due) {
			t.Errorf("push to %s sent at %s, want %s", p.Token, p.At, due)
		}
		if p.Data["task_id"] != task.ID || p.Data["customer_id"] != w.customer || p.Collapse != "task:"+task.ID || p.Title != "跟进到期" {
			t.Errorf("push %+v", p)
		}
	}
	inbox, err := w.crm.Notifications.List(context.Background(), w.rep, crm.ListOptions{Filters: map[string]string{"read": "false"}, Limit: 10})
	if err != nil || len(inbox.Data) != 1 || inbox.Data[0].TaskID != task.ID || inbox.Data[0].ID != got[0].Data["notification_id"] {
		t.Fatalf("inbox %+v, %v", inbox.Data, err)
	}
	if r := w.reminderState(task.ID); r.State != models.ReminderSent || r.SentAt == nil || !r.SentAt.Equal(due) {
		t.Fatalf("reminder after sending: %+v", r)
	}
	w.runAt(clock, due.Add(24*time.Hour))
	if n := len(w.fcm.pushes()); n != 2 {
		t.Fatalf("%d pushes a day later, want one per device", n)
	}
}

func TestRescheduledReminderArrivesAtTheNewTimeOnlyAndCancelledNever(t *testing.T) {
	clock := testenv.NewClock(start)
	w := newWorldAt(t, clock.Now)
	w.device("phone", "token-phone")
	ctx := context.Background()
	due := start.Add(time.Minute)
	moved := w.task("Moved", due)
	cancelled := w.task("Cancelled", due)
	done := w.task("Done", due)
	newDue := start.Add(5 * time.Minute)
	if _, err := w.crm.Tasks.Mutate(ctx, w.rep, moved.ID, func(t *models.Task) error { t.DueAt = newDue; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := w.crm.Tasks.Mutate(ctx, w.rep, cancelled.ID, func(t *models.Task) error { t.Status = models.TaskCancelled; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := w.crm.Tasks.Delete(ctx, w.rep, done.ID, 0); err != nil {
		t.Fatal(err)
	}
	w.runAt(clock, due)
	w.runAt(clock, newDue.Add(-time.Millisecond))
	if got := w.fcm.pushes(); len(got) != 0 {
		t.Fatalf("pushes before the moved reminder's new time: %+v", got)
	}
	w.runAt(clock, newDue)
	got := w.fcm.pushes()
	if len(got) != 1 || got[0].Data["task_id"] != moved.ID || !got[0].At.Equal(newDue) {
		t.Fatalf("pushes %+v, want only the moved task's, at %s", got, newDue)
	}
	w.runAt(clock, newDue.Add(24*time.Hour))
	if got := w.fcm.pushes(); len(got) != 1 {
		t.Fatalf("pushes a day later: %+v, want the moved task's only", got)
	}
	if r := w.reminderState(cancelled.ID); r.State != models.ReminderCancelled {
		t.Fatalf("the cancelled task's reminder is %s", r.State)
	}
}

func TestTwoProcessesSendEachReminderOncePerDevice(t *testing.T) {
	clock := testenv.NewClock(start)
	w := newWorldAt(t, clock.Now)
	w.device("phone", "token-phone")
	w.device("tablet", "token-tablet")
	second := w.another()
	// Small batches, so that both workers claim some of the burst.
	w.worker.Batch, second.worker.Batch = 4, 4
	due := start.Add(time.Minute)
	const tasks = 30
	for i := range tasks {
		w.task(fmt.Sprint("Call ", i), due)
	}
	w.runAt(clock, due, w.replica, second)
	seen := map[string]int{}
	for _, p := range w.fcm.pushes() {
		seen[p.Token+"/"+p.Data["task_id"]]++
		if !p.At.Equal(due) {
			t.Errorf("push to %s sent at %s, want %s", p.Token, p.At, due)
		}
	}
	if len(seen) != 2*tasks || len(w.fcm.pushes()) != 2*tasks {
		t.Fatalf("%d distinct pushes, %d in all; want %d of each", len(seen), len(w.fcm.pushes()), 2*tasks)
	}
	// Past every claim's end, neither process finds anything left to send.
	w.runAt(clock, due.Add(time.Hour), w.replica, second)
	if n := len(w.fcm.pushes()); n != 2*tasks {
		t.Fatalf("%d pushes an hour later, want %d", n, 2*tasks)
	}
}

func TestRemindersSurviveARedisFlushAndAreNotSentTwice(t *testing.T) {
	clock := testenv.NewClock(start)
	w := newWorldAt(t, clock.Now)
	w.device("phone", "token-phone")
	ctx := context.Background()
	due := start.Add(time.Minute)
	task := w.task("Before the flush", due)
	w.rd.Flush(t)
	// A restart: the schedule is rebuilt from MongoDB.
	if n, err := w.scheduler.Reconcile(ctx, w.crm); err != nil || n != 1 {
		t.Fatalf("reconcile: %d, %v", n, err)
	}
	w.runAt(clock, due.Add(-time.Millisecond))
	if got := w.fcm.pushes(); len(got) != 0 {
		t.Fatalf("pushed before the due time: %+v", got)
	}
	w.runAt(clock, due)
	if got := w.fcm.pushes(); len(got) != 1 || got[0].Data["task_id"] != task.ID || !got[0].At.Equal(due) {
		t.Fatalf("pushes after the flush: %+v", got)
	}
	// Sent, then Redis lost again: nothing is sent twice.
	w.rd.Flush(t)
	if _, err := w.scheduler.Reconcile(ctx, w.crm); err != nil {
		t.Fatal(err)
	}
	w.runAt(clock, due.Add(time.Hour))
	if n := len(w.fcm.pushes()); n != 1 {
		t.Fatalf("%d pushes after a second flush, want 1", n)
	}
}

// A worker claimed a reminder's push to one device and died before sending
// it (kill -9 between the claim and the push). The next worker must not take
// the reminder as sent: it sends that push once the claim runs out, or at
// once when it is Alone (the only process, so the claimer is gone), and the
// other device's push once.
func TestAPushClaimedByAWorkerThatDiedIsSentWhenItsClaimRunsOut(t *testing.T) {
	const claim = 2 * time.Second // the world's schedule's claims
	for _, alone := range []bool{false, true} {
		t.Run(fmt.Sprint("alone ", alone), func(t *testing.T) {
			clock := testenv.NewClock(start)
			w := newWorldAt(t, clock.Now)
			w.device("phone", "token-phone")
			w.device("tablet", "token-tablet")
			due := start.Add(time.Minute)
			task := w.task("Call", due)
			// The dead worker claimed the tablet's push at the due time.
			claimedAt := due
			id := models.DeliveryID(models.ReminderID(w.rep.TenantID, task.ID, models.NotifyTaskDue), task.DueAt, "tablet")
			if err := w.store.ClaimDelivery(context.Background(), models.Delivery{ID: id, State: "claimed", At: claimedAt.UnixMilli()}); err != nil {
				t.Fatal(err)
			}
			clock.Set(due.Add(time.Millisecond))
			next := w.another() // started after the claimer died
			next.worker.Alone = alone
			w.runAt(clock, clock.Now(), next)
			if got := w.fcm.to("token-phone"); len(got) != 1 {
				t.Fatalf("phone at the due time: %+v", got)
			}
			if alone {
				if got := w.fcm.to("token-tablet"); len(got) != 1 || !got[0].At.Equal(due.Add(time.Millisecond)) {
					t.Fatalf("tablet, with the only worker started after the claim: %+v", got)
				}
			} else {
				w.runAt(clock, claimedAt.Add(claim), next)
				if got := w.fcm.to("token-tablet"); len(got) != 0 {
					t.Fatalf("the claimed push was sent while its claim ran: %+v", got)
				}
				end := claimedAt.Add(claim + time.Millisecond)
				w.runAt(clock, end, next)
				if got := w.fcm.to("token-tablet"); len(got) != 1 || !got[0].At.Equal(end) {
					t.Fatalf("tablet after the claim ran out at %s: %+v", end, got)
				}
			}
			w.runAt(clock, due.Add(time.Hour), next)
			if phone, tablet := len(w.fcm.to("token-phone")), len(w.fcm.to("token-tablet")); phone != 1 || tablet != 1 {
				t.Fatalf("%d pushes to the phone, %d to the tablet; want one each", phone, tablet)
			}
			if r := w.reminderState(task.ID); r.State != models.ReminderSent {
				t.Fatalf("reminder %+v, want sent", r)
			}
		})
	}
}

func TestUnregisteredTokenIsRemovedAfterItsFirstFailure(t *testing.T) {
	clock := testenv.NewClock(start)
	w := newWorldAt(t, clock.Now)
	w.device("old-phone", "token-dead")
	w.device("phone", "token-phone")
	w.fcm.answer("token-dead", fcmAnswer{status: 404, errStatus: "NOT_FOUND", fcmCode: "UNREGISTERED"})
	first := start.Add(time.Minute)
	w.task("Call", first)
	w.runAt(clock, first)
	if got := w.fcm.to("token-phone"); len(got) != 1 {
		t.Fatalf("the live device got %+v", got)
	}
	devices, err := w.devices.List(context.Background(), w.rep.TenantID, w.rep.UserID)
	if err != nil || len(devices) != 1 || devices[0].DeviceID != "phone" {
		t.Fatalf("devices after an unregistered token: %+v, %v", devices, err)
	}
	if _, err := w.store.TokenOwnerOf(context.Background(), w.rep.TenantID, "token-dead"); err == nil {
		t.Fatal("the dead token is still registered")
	}
	second := start.Add(2 * time.Minute)
	w.task("Next call", second)
	w.runAt(clock, second)
	if n := len(w.fcm.to("token-dead")); n != 1 {
		t.Fatalf("the dead token was tried %d times", n)
	}
	if n := len(w.fcm.to("token-phone")); n != 2 {
		t.Fatalf("the live device got %d pushes, want 2", n)
	}
}

func TestUnavailableWithRetryAfterIsRetriedNoSoonerThanAsked(t *testing.T) {
	clock := testenv.NewClock(start)
	w := newWorldAt(t, clock.Now)
	w.device("phone", "token-phone")
	w.fcm.answer("token-phone", fcmAnswer{status: 503, errStatus: "UNAVAILABLE", retryAfter: "2"})
	due := start.Add(time.Minute)
	task := w.task("Call", due)
	w.runAt(clock, due)
	if got := w.fcm.to("token-phone"); len(got) != 1 {
		t.Fatalf("requests at the due time: %+v", got)
	}
	if r := w.reminderState(task.ID); r.State != models.ReminderScheduled || r.Attempts != 1 {
		t.Fatalf("reminder after a 503: %+v, want scheduled after one attempt", r)
	}
	w.runAt(clock, due.Add(2*time.Second-time.Millisecond))
	if got := w.fcm.to("token-phone"); len(got) != 1 {
		t.Fatalf("retried before Retry-After: %+v", got)
	}
	retryAt := due.Add(2 * time.Second)
	w.runAt(clock, retryAt)
	got := w.fcm.to("token-phone")
	if len(got) != 2 || !got[1].At.Equal(retryAt) {
		t.Fatalf("requests %+v, want the failed one and a retry at %s", got, retryAt)
	}
	if r := w.reminderState(task.ID); r.State != models.ReminderSent {
		t.Fatalf("reminder after the retry: %+v, want sent", r)
	}
	w.runAt(clock, due.Add(time.Hour))
	if n := len(w.fcm.to("token-phone")); n != 2 {
		t.Fatalf("%d requests, want the failed one and one retry", n)
	}
}
