package notify_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fieldcrm/fieldcrm/internal/crm"
	"github.com/fieldcrm/fieldcrm/internal/testenv"
	"github.com/fieldcrm/fieldcrm/models"
	"github.com/fieldcrm/fieldcrm/notify"
)

// user creates a user of the world's tenant with a device (token = id).
func (w *world) user(name string, role models.Role, teamID, managerID, tz, locale string) models.User {
	w.t.Helper()
	ctx := context.Background()
	u := models.User{ID: models.NewID(), TenantID: w.rep.TenantID, Email: strings.ToLower(name) + "." + models.NewID() + "@acme.test", Name: name, Role: role,
		TeamID: teamID, ManagerID: managerID, TimeZone: tz, Locale: locale, Active: true, PasswordHash: "x",
		CreatedAt: time.Now().UTC(), UpdatedAt: time.Now().UTC()}
	if err := w.store.CreateUser(ctx, u); err != nil {
		w.t.Fatal(err)
	}
	a := models.Actor{UserID: u.ID, TenantID: u.TenantID, Role: role, TeamID: teamID}
	if _, err := w.devices.Register(ctx, a, models.Device{DeviceID: "phone", FCMToken: "token-" + u.ID, Platform: models.PlatformIOS}); err != nil {
		w.t.Fatal(err)
	}
	return u
}

// admin acts as an administrator of the world's tenant.
func (w *world) admin() models.Actor {
	return models.Actor{UserID: "admin", TenantID: w.rep.TenantID, Role: models.RoleAdmin}
}

func (w *world) team(name, managerID string) string {
	w.t.Helper()
	team := models.Team{ID: models.NewID(), TenantID: w.rep.TenantID, Name: name, ManagerID: managerID, CreatedAt: time.Now().UTC(), UpdatedAt: time.Now().UTC()}
	if err := w.store.CreateTeam(context.Background(), team); err != nil {
		w.t.Fatal(err)
	}
	return team.ID
}

func (w *world) settings(edit func(r *models.ReminderSettings)) {
	w.t.Helper()
	ctx := context.Background()
	tenant, err := w.store.Tenant(ctx, w.rep.TenantID)
	if err != nil {
		w.t.Fatal(err)
	}
	st := tenant.Settings.WithDefaults()
	edit(&st.Reminders)
	if err := w.store.UpdateSettings(ctx, w.rep.TenantID, st); err != nil {
		w.t.Fatal(err)
	}
}

// at moves the clock to t and lets the worker send what is due.
func (w *world) at(clock *testenv.Clock, t time.Time) {
	w.t.Helper()
	clock.Set(t)
	for {
		n, err := w.worker.RunOnce(context.Background())
		if err != nil {
			w.t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
}

// org is a director over a manager (in Berlin, quiet at night) over a team
// with a rep (in Shanghai), each with a phone.
type org struct {
	director, manager, rep models.User
	team                   string
}

func (w *world) org() org {
	var o org
	o.director = w.user("Director", models.RoleManager, "", "", "Europe/Berlin", "en")
	o.manager = w.user("Manager", models.RoleManager, "", o.director.ID, "Europe/Berlin", "en")
	o.team = w.team("Field", o.manager.ID)
	o.rep = w.user("Rep", models.RoleRep, o.team, "", "Asia/Shanghai", "zh-CN")
	return o
}

func TestOverdueTaskEscalatesToTheManagerThenTheirManager(t *testing.T) {
	clock := testenv.NewClock(time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC))
	w := newWorldAt(t, clock.Now)
	o := w.org()
	w.settings(func(r *models.ReminderSettings) { r.OverdueAfterMinutes, r.SecondEscalationAfterMinutes = 60, 240 })
	ctx := context.Background()
	due := clock.Now().Add(time.Hour)
	task, err := w.crm.Tasks.Create(ctx, w.admin(), models.Task{ChildFields: models.ChildFields{CustomerID: w.customer}, Title: "拜访客户", DueAt: due, AssigneeID: o.rep.ID})
	if err != nil {
		t.Fatal(err)
	}
	done, err := w.crm.Tasks.Create(ctx, w.admin(), models.Task{ChildFields: models.ChildFields{CustomerID: w.customer}, Title: "Done in time", DueAt: due, AssigneeID: o.rep.ID})
	if err != nil {
		t.Fatal(err)
	}
	w.at(clock, due)
	if got := w.fcm.to("token-" + o.rep.ID); len(got) != 2 || got[0].Title != "跟进到期" {
		t.Fatalf("rep at the due time: %+v", got)
	}
	if _, err := w.crm.Tasks.Mutate(ctx, w.admin(), done.ID, func(t *models.Task) error { t.Status = models.TaskDone; return nil }); err != nil {
		t.Fatal(err)
	}
	w.at(clock, due.Add(59*time.Minute))
	if got := w.fcm.to("token-" + o.manager.ID); len(got) != 0 {
		t.Fatalf("manager before the grace period: %+v", got)
	}
	w.at(clock, due.Add(60*time.Minute))
	got := w.fcm.to("token-" + o.manager.ID)
	if len(got) != 1 || got[0].Data["task_id"] != task.ID || got[0].Title != "Overdue follow-up" || !strings.Contains(got[0].Body, "Rep") {
		t.Fatalf("manager after the grace period: %+v", got)
	}
	if d := w.fcm.to("token-" + o.director.ID); len(d) != 0 {
		t.Fatalf("director too early: %+v", d)
	}
	w.at(clock, due.Add(240*time.Minute))
	if d := w.fcm.to("token-" + o.director.ID); len(d) != 1 || d[0].Data["task_id"] != task.ID {
		t.Fatalf("director after the second escalation: %+v", d)
	}
	if n := len(w.fcm.pushes()); n != 4 {
		t.Fatalf("%d pushes in all, want 4 (two due, two escalations; none for the task done in time)", n)
	}
}

func TestTicketSLAWarnsTheAssigneeThenTellsTheManager(t *testing.T) {
	clock := testenv.NewClock(time.Date(2026, 11, 23, 1, 0, 0, 0, time.UTC))
	w := newWorldAt(t, clock.Now)
	o := w.org()
	ctx := context.Background()
	ticket, err := w.crm.Tickets.Create(ctx, w.admin(), models.Ticket{ChildFields: models.ChildFields{CustomerID: w.customer},
		Type: models.TicketTypes[0], Priority: models.PriorityUrgent, Title: "Machine down", AssigneeID: o.rep.ID})
	if err != nil {
		t.Fatal(err)
	}
	w.at(clock, ticket.SLADueAt.Add(-61*time.Minute))
	if n := len(w.fcm.pushes()); n != 0 {
		t.Fatalf("%d pushes before the warning", n)
	}
	w.at(clock, ticket.SLADueAt.Add(-60*time.Minute))
	if got := w.fcm.to("token-" + o.rep.ID); len(got) != 1 || got[0].Data["ticket_id"] != ticket.ID || got[0].Title != "工单即将超时" {
		t.Fatalf("assignee's warning: %+v", got)
	}
	w.at(clock, ticket.SLADueAt)
	if got := w.fcm.to("token-" + o.manager.ID); len(got) != 1 || got[0].Title != "Ticket past its SLA" {
		t.Fatalf("manager at the breach: %+v", got)
	}

	resolved, err := w.crm.Tickets.Create(ctx, w.admin(), models.Ticket{ChildFields: models.ChildFields{CustomerID: w.customer},
		Type: models.TicketTypes[0], Priority: models.PriorityHigh, Title: "Resolved fast", AssigneeID: o.rep.ID})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.crm.Tickets.Mutate(ctx, w.admin(), resolved.ID, func(t *models.Ticket) error { t.Status = models.TicketInProgress; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := w.crm.Tickets.Mutate(ctx, w.admin(), resolved.ID, func(t *models.Ticket) error { t.Status = models.TicketResolved; return nil }); err != nil {
		t.Fatal(err)
	}
	before := len(w.fcm.pushes())
	w.at(clock, resolved.SLADueAt.Add(time.Hour))
	if n := len(w.fcm.pushes()); n != before {
		t.Fatalf("a resolved ticket's SLA reminders went out: %+v", w.fcm.pushes()[before:])
	}
}

func TestQuietHoursHoldNonUrgentPushesButNotTheInbox(t *testing.T) {
	// 22:30 in Berlin (UTC+1 in November).
	clock := testenv.NewClock(time.Date(2026, 11, 23, 21, 30, 0, 0, time.UTC))
	w := newWorldAt(t, clock.Now)
	o := w.org()
	ctx := context.Background()
	if err := w.store.UpdateUser(ctx, o.manager.TenantID, o.manager.ID, map[string]any{"quiet_hours": models.QuietHours{Start: "22:00", End: "07:00"}}); err != nil {
		t.Fatal(err)
	}
	metrics := &recordedMetrics{}
	w.worker.Metrics = metrics
	due := clock.Now().Add(-59 * time.Minute) // overdue escalation at +1 min
	task, err := w.crm.Tasks.Create(ctx, w.admin(), models.Task{ChildFields: models.ChildFields{CustomerID: w.customer}, Title: "Late call", DueAt: due, AssigneeID: o.rep.ID})
	if err != nil {
		t.Fatal(err)
	}
	w.at(clock, clock.Now().Add(time.Minute))
	if got := w.fcm.to("token-" + o.manager.ID); len(got) != 0 {
		t.Fatalf("pushed in quiet hours: %+v", got)
	}
	managerActor := models.Actor{UserID: o.manager.ID, TenantID: o.manager.TenantID, Role: models.RoleManager}
	inbox, err := w.crm.Notifications.List(ctx, managerActor, crmList())
	if err != nil || len(inbox.Data) != 1 || inbox.Data[0].TaskID != task.ID {
		t.Fatalf("the inbox should have it at once: %+v %v", inbox.Data, err)
	}
	w.at(clock, time.Date(2026, 11, 24, 5, 59, 0, 0, time.UTC)) // 06:59 in Berlin
	if got := w.fcm.to("token-" + o.manager.ID); len(got) != 0 {
		t.Fatalf("pushed before quiet hours ended: %+v", got)
	}
	w.at(clock, time.Date(2026, 11, 24, 6, 0, 0, 0, time.UTC)) // 07:00
	if got := w.fcm.to("token-" + o.manager.ID); len(got) != 1 {
		t.Fatalf("after quiet hours: %+v", got)
	}
	if inbox, _ := w.crm.Notifications.List(ctx, managerActor, crmList()); len(inbox.Data) != 1 {
		t.Fatalf("the inbox has it twice: %+v", inbox.Data)
	}
	// Pushed as the quiet hours ended: on time, not eight hours late.
	metrics.mu.Lock()
	defer metrics.mu.Unlock()
	if got := metrics.lateness[models.NotifyTaskOverdue]; len(got) != 1 || got[0] != 0 {
		t.Errorf("lateness of the escalation held by quiet hours: %v, want [0s]", got)
	}
	if metrics.escalated[models.NotifyTaskOverdue] != 1 || metrics.pushes[notify.PushSent] < 1 {
		t.Errorf("escalations %v, pushes %v", metrics.escalated, metrics.pushes)
	}
}

// recordedMetrics is a notify.Metrics that remembers what it heard.
type recordedMetrics struct {
	mu        sync.Mutex
	lateness  map[string][]time.Duration
	failed    map[string]int
	escalated map[string]int
	digests   int
	pushes    map[string]int // by outcome
}

func (m *recordedMetrics) ReminderSent(kind string, lateness time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.lateness == nil {
		m.lateness = map[string][]time.Duration{}
	}
	m.lateness[kind] = append(m.lateness[kind], lateness)
}

func (m *recordedMetrics) ReminderFailed(kind string) { m.count(&m.failed, kind) }
func (m *recordedMetrics) Escalated(kind string)      { m.count(&m.escalated, kind) }
func (m *recordedMetrics) DigestSent()                { m.mu.Lock(); m.digests++; m.mu.Unlock() }

func (m *recordedMetrics) Push(ctx context.Context, provider string) (context.Context, func(string)) {
	return ctx, func(outcome string) { m.count(&m.pushes, outcome) }
}

func (m *recordedMetrics) count(into *map[string]int, key string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if *into == nil {
		*into = map[string]int{}
	}
	(*into)[key]++
}

func TestDigestsFireAtEachManagersLocalTime(t *testing.T) {
	clock := testenv.NewClock(time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC))
	w := newWorldAt(t, clock.Now)
	ctx := context.Background()
	shanghai := w.user("Zhang", models.RoleManager, "", "", "Asia/Shanghai", "zh-CN")
	berlin := w.user("Berta", models.RoleManager, "", "", "Europe/Berlin", "en")
	team := w.team("East", shanghai.ID)
	rep := w.user("Li", models.RoleRep, team, "", "Asia/Shanghai", "zh-CN")
	repActor := models.Actor{UserID: rep.ID, TenantID: rep.TenantID, Role: models.RoleRep, TeamID: team}
	c, err := w.crm.CreateCustomer(ctx, repActor, models.Customer{CustomerFields: models.CustomerFields{Name: "New one"}}, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, due := range []time.Time{time.Date(2026, 11, 23, 3, 0, 0, 0, time.UTC), time.Date(2026, 11, 22, 13, 0, 0, 0, time.UTC)} {
		if _, err := w.crm.Tasks.Create(ctx, repActor, models.Task{ChildFields: models.ChildFields{CustomerID: c.ID}, Title: "Visit", DueAt: due}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.scheduler.Reconcile(ctx, w.crm); err != nil {
		t.Fatal(err)
	}
	// 08:00 in Shanghai is 00:00 UTC; in Berlin, 07:00 UTC.
	w.at(clock, time.Date(2026, 11, 22, 23, 59, 0, 0, time.UTC))
	for _, m := range []models.User{shanghai, berlin} {
		if got := w.fcm.kind("token-"+m.ID, models.NotifyDigest); len(got) != 0 {
			t.Fatalf("digest before its time: %+v", got)
		}
	}
	w.at(clock, time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC))
	got := w.fcm.kind("token-"+shanghai.ID, models.NotifyDigest)
	if len(got) != 1 || got[0].Title != "团队日报" || !strings.Contains(got[0].Body, "今日到期跟进 1 个，逾期 1 个，新客户 1 个") {
		t.Fatalf("Shanghai's digest: %+v", got)
	}
	if len(w.fcm.kind("token-"+berlin.ID, models.NotifyDigest)) != 0 {
		t.Fatal("Berlin's digest came at Shanghai's time")
	}
	w.at(clock, time.Date(2026, 11, 23, 7, 0, 0, 0, time.UTC))
	if got := w.fcm.kind("token-"+berlin.ID, models.NotifyDigest); len(got) != 1 || got[0].Title != "Your team today" {
		t.Fatalf("Berlin's digest: %+v", got)
	}
	// The next ones are scheduled for tomorrow, each at its local 08:00.
	r, err := w.store.Reminder(ctx, models.ReminderID(shanghai.TenantID, models.DigestSubject(shanghai.ID), models.NotifyDigest))
	if err != nil || r.State != models.ReminderScheduled || !r.FireAt.Equal(time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("Shanghai's next digest: %+v %v", r, err)
	}
	w.at(clock, time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC))
	if n := len(w.fcm.kind("token-"+shanghai.ID, models.NotifyDigest)); n != 2 {
		t.Fatalf("Shanghai got %d digests by the second morning", n)
	}
}

func crmList() crm.ListOptions { return crm.ListOptions{Limit: 50} }

// FCM's 429 is not retried by the Firebase SDK: the worker retries it on the
// schedule, no sooner than Retry-After, with growing pauses, and after
// MaxAttempts marks the reminder failed (GET /v1/tasks/{id}/reminders shows it).
func TestQuotaExceededIsRetriedThenMarkedFailed(t *testing.T) {
	clock := testenv.NewClock(time.Date(2026, 11, 23, 1, 0, 0, 0, time.UTC))
	w := newWorldAt(t, clock.Now)
	w.device("phone", "token-phone")
	metrics := &recordedMetrics{}
	w.worker.Metrics = metrics
	quota := fcmAnswer{status: 429, errStatus: "RESOURCE_EXHAUSTED", fcmCode: "QUOTA_EXCEEDED", retryAfter: "60"}
	for range notify.MaxAttempts {
		w.fcm.answer("token-phone", quota)
	}
	due := clock.Now().Add(time.Minute)
	task := w.task("Call", due)
	id := models.ReminderID(w.rep.TenantID, task.ID, models.NotifyTaskDue)
	w.at(clock, due)
	if n := len(w.fcm.to("token-phone")); n != 1 {
		t.Fatalf("%d requests at the due time", n)
	}
	w.at(clock, due.Add(59*time.Second))
	if n := len(w.fcm.to("token-phone")); n != 1 {
		t.Fatalf("retried before Retry-After: %d requests", n)
	}
	w.at(clock, due.Add(60*time.Second))
	if n := len(w.fcm.to("token-phone")); n != 2 {
		t.Fatalf("not retried after Retry-After: %d requests", n)
	}
	for i := 0; i < 40 && len(w.fcm.to("token-phone")) < notify.MaxAttempts; i++ {
		w.at(clock, clock.Now().Add(10*time.Minute))
	}
	r, err := w.store.Reminder(context.Background(), id)
	if err != nil || r.State != models.ReminderFailed || r.Attempts != notify.MaxAttempts || !strings.Contains(r.LastError, "retry") {
		t.Fatalf("after %d refusals: %+v %v", notify.MaxAttempts, r, err)
	}
	w.at(clock, clock.Now().Add(time.Hour))
	if n := len(w.fcm.to("token-phone")); n != notify.MaxAttempts {
		t.Fatalf("%d requests, want %d", n, notify.MaxAttempts)
	}
	metrics.mu.Lock()
	defer metrics.mu.Unlock()
	if metrics.pushes[notify.PushRetried] != notify.MaxAttempts || metrics.failed[models.NotifyTaskDue] != 1 || len(metrics.lateness) != 0 {
		t.Errorf("pushes %v, reminders failed %v, sent %v: want %d retried and the reminder failed once", metrics.pushes, metrics.failed, metrics.lateness, notify.MaxAttempts)
	}
}
