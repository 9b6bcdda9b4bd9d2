package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fieldcrm/fieldcrm/internal/app"
	"github.com/fieldcrm/fieldcrm/internal/store"
	"github.com/fieldcrm/fieldcrm/models"
	"github.com/fieldcrm/fieldcrm/notify"
)

// benchReminders runs `fieldcrm bench reminders`: it seeds reminders that
// fall due together (a burst) and at a steady rate, lets reminder workers
// send them through the real FCM client to a fake FCM on loopback, and prints
// how late each push arrived and how many were sent per second.
//
// The workers run on a clock shifted so that the seeded due times come just
// after seeding ends; it runs at the real speed, and arrivals are read on it.
func benchReminders(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench reminders", flag.ContinueOnError)
	fs.SetOutput(stderr)
	burst := fs.Int("burst", 100000, "reminders due together, within --burst-within")
	within := fs.Duration("burst-within", time.Minute, "the span the burst's due times fall in")
	steady := fs.Int("steady", 1000, "reminders due at a steady 1,000 per minute (so this many minutes' worth / 1000)")
	workers := fs.Int("workers", 1, "reminder workers (as in that many processes)")
	reps := fs.Int("reps", 200, "reps the reminders are spread over, one phone each")
	parallel := fs.Int("parallel", 0, "reminders each worker sends at once (0: the worker's default)")
	batch := fs.Int("batch", 0, "reminders each worker claims at once (0: the worker's default)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the sending (not the seeding) to this file")
	timeline := fs.Bool("timeline", false, "after the burst, print each second of it on the wall clock: pushes that second and the latest of them (to line up with a database's log)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *within <= 0 {
		return usageError{"--burst-within: must be more than 0"}
	}
	fcm := newBenchFCM()
	defer fcm.srv.Close()
	var offset atomic.Int64 // the application's clock = real clock + offset
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	fcm.clock = clock
	a, engine, cleanup, err := benchApp(ctx, getenv, stderr, map[string]string{"FCM_PROJECT_ID": "bench", "FCM_ENDPOINT": fcm.srv.URL},
		app.WithClock(clock))
	defer cleanup()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "fieldcrm bench reminders: %s, %d workers, %d reps\n", engine, *workers, *reps)
	start := time.Now()
	tenant, users, customer, err := benchPeople(ctx, a, *reps)
	if err != nil {
		return err
	}
	// The burst falls due one hour from now on the real clock, over
	// --burst-within; the steady run half an hour later (the clock only jumps
	// forward, past however long the burst took), one per 60 ms.
	t0 := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	var due []time.Time
	for range *burst {
		due = append(due, t0.Add(time.Duration(rand.Int64N(int64(*within)))))
	}
	t1 := t0.Add(30 * time.Minute)
	for i := range *steady {
		due = append(due, t1.Add(time.Duration(i)*60*time.Millisecond))
	}
	dueOf, err := benchSeedReminders(ctx, a, tenant, users, customer, due)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "seeded %d reminders in %s\n\n", len(due), time.Since(start).Round(time.Millisecond))

	// Each worker beyond the first is another process's: a replica of the
	// application on the same database and Redis. None of them is alone.
	senders := []*notify.Worker{a.Worker}
	for range *workers - 1 {
		r, err := a.Replica(ctx)
		defer r.Close(ctx)
		if err != nil {
			return err
		}
		a.Worker.Alone = false
		senders = append(senders, r.Worker)
	}
	stopProfile, err := startCPUProfile(*cpuProfile)
	if err != nil {
		return err
	}
	defer stopProfile()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	offset.Store(int64(time.Until(t0.Add(-2 * time.Second))))
	for _, w := range senders {
		if *parallel > 0 {
			w.Parallel = *parallel
		}
		if *batch > 0 {
			w.Batch = *batch
		}
		wg.Add(1)
		go func() { defer wg.Done(); w.Run(runCtx) }()
	}
	fmt.Fprintf(stdout, "%-36s %10s %10s %10s %10s %10s %12s\n", "case", "reminders", "delivered", "p50 late", "p99 late", "max late", "pushes/s")
	// pushes/s is over the span from the first to the last arrival: for the
	// burst, the workers' pace; for the steady case, the rate it was due at.
	report := func(name string, from, to time.Time, deadline time.Time) {
		var late []time.Duration
		var first, last time.Time
		pushes := map[string]int{}
		for _, arr := range fcm.until(deadline) {
			d, ok := dueOf[arr.task]
			if !ok || d.Before(from) || d.After(to) {
				continue
			}
			if pushes[arr.task]++; pushes[arr.task] > 1 {
				fmt.Fprintf(stdout, "DUPLICATE push for task %s\n", arr.task)
			}
			late = append(late, arr.at.Sub(d))
			if first.IsZero() || arr.at.Before(first) {
				first = arr.at
			}
			if arr.at.After(last) {
				last = arr.at
			}
		}
		n := 0
		for _, d := range dueOf {
			if !d.Before(from) && !d.After(to) {
				n++
			}
		}
		rate := 0.0
		if last.After(first) {
			rate = float64(len(late)) / last.Sub(first).Seconds()
		}
		fmt.Fprintf(stdout, "%-36s %10d %10d %10s %10s %10s %12.0f\n", name, n, len(late),
			percentile(late, 50).Round(time.Millisecond), percentile(late, 99).Round(time.Millisecond),
			percentile(late, 100).Round(time.Millisecond), rate)
	}
	// Wait for the burst: until all of it arrived, or 10 minutes after it.
	burstEnd := t0.Add(*within)
	fcm.wait(ctx, *burst, func() bool { return clock().After(burstEnd.Add(10 * time.Minute)) })
	report(fmt.Sprintf("burst: %d due within %s", *burst, *within), t0, burstEnd, clock())
	fmt.Fprintf(stdout, "%-36s last push %s after the last due time\n", "", fcm.lastAfter(burstEnd).Round(time.Millisecond))
	if *timeline {
		printTimeline(stdout, fcm.until(clock()), dueOf)
	}
	if *steady > 0 {
		// Jump to just before the steady run; it then plays out in real time.
		offset.Store(int64(time.Until(t1.Add(-2 * time.Second))))
		steadyEnd := t1.Add(time.Duration(*steady) * 60 * time.Millisecond)
		fcm.wait(ctx, *burst+*steady, func() bool { return clock().After(steadyEnd.Add(time.Minute)) })
		report(fmt.Sprintf("steady: %d at 1,000 per minute", *steady), t1, steadyEnd, clock())
	}
	stop()
	wg.Wait()
	return nil
}

// benchPeople creates a tenant with reps (each with a phone) and a customer.
func benchPeople(ctx context.Context, a *app.App, reps int) (string, []models.User, string, error) {
	now := time.Now().UTC()
	tenant := models.Tenant{ID: models.NewID(), Name: "Bench", CreatedAt: now}
	if err := a.Store.CreateTenant(ctx, tenant); err != nil {
		return "", nil, "", err
	}
	var users []models.User
	for i := range reps {
		u := models.User{ID: models.NewID(), TenantID: tenant.ID, Email: fmt.Sprintf("rep%d@bench.test", i), Name: fmt.Sprint("Rep ", i),
			Role: models.RoleRep, TimeZone: "Asia/Shanghai", Locale: "zh-CN", Active: true, PasswordHash: "x", CreatedAt: now, UpdatedAt: now}
		if err := a.Store.CreateUser(ctx, u); err != nil {
			return "", nil, "", err
		}
		actor := models.Actor{UserID: u.ID, TenantID: tenant.ID, Role: models.RoleRep}
		if _, err := a.Devices.Register(ctx, actor, models.Device{DeviceID: "phone", FCMToken: "token-" + u.ID, Platform: models.PlatformAndroid}); err != nil {
			return "", nil, "", err
		}
		users = append(users, u)
	}
	admin := models.Actor{UserID: "bench", TenantID: tenant.ID, Role: models.RoleAdmin}
	c, err := a.CRM.CreateCustomer(ctx, admin, models.Customer{CustomerFields: models.CustomerFields{Name: "Bench customer"}}, false)
	return tenant.ID, users, c.ID, err
}

// benchSeedReminders stores one open task per due time, with its due-time
// reminder, in batches, and puts the reminders on the schedule. It returns
// the due time of each task.
func benchSeedReminders(ctx context.Context, a *app.App, tenant string, users []models.User, customer string, due []time.Time) (map[string]time.Time, error) {
	dueOf := make(map[string]time.Time, len(due))
	const batch = 1000
	now := time.Now().UTC()
	for from := 0; from < len(due); from += batch {
		var tasks []models.Record
		var reminders []models.Reminder
		fire := map[string]time.Time{}
		var dones []func()
		for i := from; i < min(from+batch, len(due)); i++ {
			u := users[i%len(users)]
			seq, done, err := a.Sequencer.Begin(ctx, tenant)
			if err != nil {
				return nil, err
			}
			dones = append(dones, done)
			t := &models.Task{ChildFields: models.ChildFields{CustomerID: customer}, Title: fmt.Sprint("Follow-up ", i),
				DueAt: due[i].UTC().Truncate(time.Millisecond), AssigneeID: u.ID, Status: models.TaskOpen}
			t.Meta = models.Meta{ID: models.NewID(), TenantID: tenant, OwnerID: u.ID, Version: 1, CreatedAt: now, UpdatedAt: now,
				CreatedBy: u.ID, UpdatedBy: u.ID, Seq: seq, FieldSeqs: map[string]int64{"id": seq}}
			tasks = append(tasks, t)
			id := models.ReminderID(tenant, t.ID, models.NotifyTaskDue)
			reminders = append(reminders, models.Reminder{ID: id, TenantID: tenant, Kind: models.NotifyTaskDue, TaskID: t.ID,
				UserID: u.ID, FireAt: t.DueAt, State: models.ReminderScheduled, UpdatedAt: now})
			fire[id] = t.DueAt
			dueOf[t.ID] = t.DueAt
		}
		err := a.Store.InsertBatch(ctx, store.Tasks, tasks, models.AuditEntry{Action: "seed"})
		for _, done := range dones {
			done()
		}
		if err == nil {
			err = a.Store.InsertReminders(ctx, reminders)
		}
		if err == nil {
			err = a.Schedule.AddMany(ctx, fire)
		}
		if err != nil {
			return nil, err
		}
	}
	return dueOf, nil
}

// benchFCM is a fake FCM send endpoint that notes when each task's push
// arrived, on the workers' clock.
type benchFCM struct {
	srv   *httptest.Server
	clock func() time.Time
	mu    sync.Mutex
	got   []arrival
}

type arrival struct {
	task  string
	token string
	at    time.Time // on the workers' clock
	wall  time.Time // on the real clock
}

func newBenchFCM() *benchFCM {
	f := &benchFCM{clock: time.Now}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Message struct {
				Token string            `json:"token"`
				Data  map[string]string `json:"data"`
			} `json:"message"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		f.mu.Lock()
		f.got = append(f.got, arrival{task: req.Message.Data["task_id"], token: req.Message.Token, at: f.clock(), wall: time.Now()})
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"name": "projects/bench/messages/1"}`)
	}))
	return f
}

// wait returns once n pushes arrived, or give up says so.
func (f *benchFCM) wait(ctx context.Context, n int, giveUp func() bool) {
	for ctx.Err() == nil && !giveUp() {
		f.mu.Lock()
		got := len(f.got)
		f.mu.Unlock()
		if got >= n {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// until returns the arrivals up to t.
func (f *benchFCM) until(t time.Time) []arrival {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.DeleteFunc(slices.Clone(f.got), func(a arrival) bool { return a.at.After(t) })
}

// lastAfter is how long after t the last push arrived.
func (f *benchFCM) lastAfter(t time.Time) time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	var last time.Time
	for _, a := range f.got {
		if a.at.After(last) {
			last = a.at
		}
	}
	return last.Sub(t)
}

// printTimeline prints, for each wall-clock second with arrivals, how many
// pushes arrived and the latest of them, so that a slow stretch of a run can
// be lined up with the database's log (checkpoints, say).
func printTimeline(w io.Writer, arrivals []arrival, dueOf map[string]time.Time) {
	type second struct {
		pushes int
		late   time.Duration
	}
	bySecond := map[time.Time]*second{}
	for _, a := range arrivals {
		due, ok := dueOf[a.task]
		if !ok {
			continue
		}
		at := a.wall.UTC().Truncate(time.Second)
		s := bySecond[at]
		if s == nil {
			s = &second{}
			bySecond[at] = s
		}
		s.pushes++
		s.late = max(s.late, a.at.Sub(due))
	}
	var seconds []time.Time
	for at := range bySecond {
		seconds = append(seconds, at)
	}
	slices.SortFunc(seconds, time.Time.Compare)
	fmt.Fprintf(w, "\n%-12s %8s %10s\n", "wall (UTC)", "pushes", "max late")
	for _, at := range seconds {
		fmt.Fprintf(w, "%-12s %8d %10s\n", at.Format("15:04:05"), bySecond[at].pushes, bySecond[at].late.Round(time.Millisecond))
	}
}
