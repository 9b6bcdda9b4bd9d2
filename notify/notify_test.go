package notify_test

import (
	"context"
	"fmt"
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

// waitFor polls cond until it holds or d passes.
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

func TestReminderArrivesAtItsDueTimeAndLandsInTheInbox(t *testing.T) {
	w := newWorld(t)
	w.device("phone", "token-phone")
	w.device("tablet", "token-tablet")
	w.run(t)
	due := time.Now().Add(2 * time.Second).Truncate(time.Millisecond)
	task := w.task("回访王芳", due)

	if !waitFor(4*time.Second, func() bool { return len(w.fcm.pushes()) == 2 }) {
		t.Fatalf("pushes: %+v", w.fcm.pushes())
	}
	for _, p := range w.fcm.pushes() {
		if late := p.At.Sub(due); late < 0 || late > time.Second {
			t.Errorf("push to %s arrived %s after its due time", p.Token, late)
		}
		if p.Data["task_id"] != task.ID || p.Data["customer_id"] != w.customer || p.Collapse != "task:"+task.ID || p.Title != "跟进到期" {
			t.Errorf("push %+v", p)
		}
	}
	inbox, err := w.crm.Notifications.List(context.Background(), w.rep, crm.ListOptions{Filters: map[string]string{"read": "false"}, Limit: 10})
	if err != nil || len(inbox.Data) != 1 || inbox.Data[0].TaskID != task.ID || inbox.Data[0].ID != w.fcm.pushes()[0].Data["notification_id"] {
		t.Fatalf("inbox %+v, %v", inbox.Data, err)
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(w.fcm.pushes()); n != 2 {
		t.Fatalf("%d pushes, want one per device", n)
	}
}

func TestRescheduledReminderArrivesAtTheNewTimeOnlyAndCancelledNever(t *testing.T) {
	w := newWorld(t)
	w.device("phone", "token-phone")
	w.run(t)
	ctx := context.Background()
	moved := w.task("Moved", time.Now().Add(time.Second))
	cancelled := w.task("Cancelled", time.Now().Add(time.Second))
	done := w.task("Done", time.Now().Add(time.Second))
	newDue := time.Now().Add(2500 * time.Millisecond).Truncate(time.Millisecond)
	if _, err := w.crm.Tasks.Mutate(ctx, w.rep, moved.ID, func(t *models.Task) error { t.DueAt = newDue; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := w.crm.Tasks.Mutate(ctx, w.rep, cancelled.ID, func(t *models.Task) error { t.Status = models.TaskCancelled; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := w.crm.Tasks.Delete(ctx, w.rep, done.ID, 0); err != nil {
		t.Fatal(err)
	}
	if !waitFor(4*time.Second, func() bool { return len(w.fcm.pushes()) >= 1 }) {
		t.Fatal("the moved reminder never arrived")
	}
	time.Sleep(time.Second)
	got := w.fcm.pushes()
	if len(got) != 1 || got[0].Data["task_id"] != moved.ID {
		t.Fatalf("pushes %+v, want only the moved task's", got)
	}
	if late := got[0].At.Sub(newDue); late < 0 || late > time.Second {
		t.Fatalf("moved reminder arrived %s after its new time", late)
	}
}

func TestTwoProcessesSendEachReminderOncePerDevice(t *testing.T) {
	w := newWorld(t)
	w.device("phone", "token-phone")
	w.device("tablet", "token-tablet")
	second := w.another()
	due := time.Now().Add(1500 * time.Millisecond)
	const tasks = 30
	for i := range tasks {
		w.task(fmt.Sprint("Call ", i), due)
	}
	w.run(t)
	second.run(t)
	if !waitFor(10*time.Second, func() bool { return len(w.fcm.pushes()) >= 2*tasks }) {
		t.Fatalf("%d pushes of %d", len(w.fcm.pushes()), 2*tasks)
	}
	time.Sleep(500 * time.Millisecond)
	seen := map[string]int{}
	for _, p := range w.fcm.pushes() {
		seen[p.Token+"/"+p.Data["task_id"]]++
	}
	if len(seen) != 2*tasks || len(w.fcm.pushes()) != 2*tasks {
		t.Fatalf("%d distinct pushes, %d in all; want %d of each", len(seen), len(w.fcm.pushes()), 2*tasks)
	}
}

func TestRemindersSurviveARedisFlushAndAreNotSentTwice(t *testing.T) {
	w := newWorld(t)
	w.device("phone", "token-phone")
	ctx := context.Background()
	w.task("Before the flush", time.Now().Add(1500*time.Millisecond))
	w.rd.Flush(t)
	// A restart: the schedule is rebuilt from MongoDB.
	if n, err := w.scheduler.Reconcile(ctx, w.crm); err != nil || n != 1 {
		t.Fatalf("reconcile: %d, %v", n, err)
	}
	w.run(t)
	if !waitFor(4*time.Second, func() bool { return len(w.fcm.pushes()) == 1 }) {
		t.Fatalf("pushes after the flush: %+v", w.fcm.pushes())
	}
	// Sent, then Redis lost again: nothing is sent twice.
	w.rd.Flush(t)
	if _, err := w.scheduler.Reconcile(ctx, w.crm); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
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
	for _, alone := range []bool{false, true} {
		t.Run(fmt.Sprint("alone ", alone), func(t *testing.T) {
			w := newWorld(t)
			w.device("phone", "token-phone")
			w.device("tablet", "token-tablet")
			task := w.task("Call", time.Now().Add(300*time.Millisecond))
			claimedAt := time.Now()
			id := models.DeliveryID(models.ReminderID(w.rep.TenantID, task.ID, models.NotifyTaskDue), task.DueAt, "tablet")
			if err := w.store.ClaimDelivery(context.Background(), models.Delivery{ID: id, State: "claimed", At: claimedAt.UnixMilli()}); err != nil {
				t.Fatal(err)
			}
			next := w.another() // started after the claimer died
			next.worker.Alone = alone
			next.run(t)
			if !waitFor(6*time.Second, func() bool { return len(w.fcm.to("token-tablet")) > 0 }) {
				t.Fatalf("the claimed push never came; pushes: %+v", w.fcm.pushes())
			}
			at := w.fcm.to("token-tablet")[0].At
			if claim := 2 * time.Second; alone && at.Sub(claimedAt) >= claim || !alone && at.Sub(claimedAt) < claim {
				t.Fatalf("the claimed push came %s after the claim (claims last %s, alone %v)", at.Sub(claimedAt), claim, alone)
			}
			time.Sleep(300 * time.Millisecond)
			if phone, tablet := len(w.fcm.to("token-phone")), len(w.fcm.to("token-tablet")); phone != 1 || tablet != 1 {
				t.Fatalf("%d pushes to the phone, %d to the tablet; want one each", phone, tablet)
			}
		})
	}
}

func TestUnregisteredTokenIsRemovedAfterItsFirstFailure(t *testing.T) {
	w := newWorld(t)
	w.device("old-phone", "token-dead")
	w.device("phone", "token-phone")
	w.fcm.answer("token-dead", fcmAnswer{status: 404, errStatus: "NOT_FOUND", fcmCode: "UNREGISTERED"})
	w.run(t)
	w.task("Call", time.Now().Add(500*time.Millisecond))
	if !waitFor(4*time.Second, func() bool { return len(w.fcm.to("token-phone")) == 1 }) {
		t.Fatal("the live device got nothing")
	}
	devices, err := w.devices.List(context.Background(), w.rep.TenantID, w.rep.UserID)
	if err != nil || len(devices) != 1 || devices[0].DeviceID != "phone" {
		t.Fatalf("devices after an unregistered token: %+v, %v", devices, err)
	}
	if _, err := w.store.TokenOwnerOf(context.Background(), w.rep.TenantID, "token-dead"); err == nil {
		t.Fatal("the dead token is still registered")
	}
	w.task("Next call", time.Now().Add(300*time.Millisecond))
	time.Sleep(time.Second)
	if n := len(w.fcm.to("token-dead")); n != 1 {
		t.Fatalf("the dead token was tried %d times", n)
	}
}

func TestUnavailableWithRetryAfterIsRetriedNoSoonerThanAsked(t *testing.T) {
	w := newWorld(t)
	w.device("phone", "token-phone")
	w.fcm.answer("token-phone", fcmAnswer{status: 503, errStatus: "UNAVAILABLE", retryAfter: "2"})
	w.run(t)
	task := w.task("Call", time.Now().Add(300*time.Millisecond))
	if !waitFor(8*time.Second, func() bool { return len(w.fcm.to("token-phone")) >= 2 }) {
		t.Fatalf("never retried: %+v", w.fcm.pushes())
	}
	got := w.fcm.to("token-phone")
	if gap := got[1].At.Sub(got[0].At); gap < 2*time.Second {
		t.Fatalf("retried after %s, Retry-After asked for 2s", gap)
	}
	if !waitFor(2*time.Second, func() bool {
		r, err := w.store.Reminder(context.Background(), models.ReminderID(w.rep.TenantID, task.ID, models.NotifyTaskDue))
		return err == nil && r.State == models.ReminderSent
	}) {
		t.Fatal("the reminder is not marked sent after the retry")
	}
	time.Sleep(500 * time.Millisecond)
	if n := len(w.fcm.to("token-phone")); n != 2 {
		t.Fatalf("%d requests, want the failed one and one retry: %+v", n, w.fcm.to("token-phone"))
	}
}
