package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fieldcrm/fieldcrm/internal/app"
	"github.com/fieldcrm/fieldcrm/internal/store"
	"github.com/fieldcrm/fieldcrm/models"
)

// benchCommand runs `fieldcrm bench sync`: it starts fieldcrm on a loopback
// port with a throwaway database (embedded SQLite, or FerretDB on PostgreSQL
// when FERRETDB_POSTGRESQL_URL is set), seeds one rep's territory, and drives
// the sync API over HTTP as devices would, printing throughput and latency.
func benchCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "reminders" {
		return benchReminders(ctx, args[1:], getenv, stdout, stderr)
	}
	if len(args) > 0 && args[0] == "import" {
		return benchImport(ctx, args[1:], getenv, stdout, stderr)
	}
	if len(args) > 0 && args[0] == "api" {
		return benchAPI(ctx, args[1:], getenv, stdout, stderr)
	}
	if len(args) == 0 || args[0] != "sync" {
		return usageError{"usage: fieldcrm bench sync|reminders|import|api [flags]"}
	}
	fs := flag.NewFlagSet("bench sync", flag.ContinueOnError)
	fs.SetOutput(stderr)
	customers := fs.Int("customers", 2000, "customers in the rep's territory")
	interactions := fs.Int("interactions", 10000, "interactions on those customers")
	edits := fs.Int("edits", 500, "offline edits pushed, and server edits pulled")
	noops := fs.Int("noop-pulls", 50, "pulls with nothing new")
	page := fs.Int("page", 5000, "records per pull page")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the measured operations (not the seeding) to this file")
	pushParallel := fs.String("push-parallel", "", "rows of a push applied at once; a comma-separated list pushes the edits once per value, side by side (default: the engine's)")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	var parallels []int
	for _, v := range strings.Split(*pushParallel, ",") {
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return usageError{fmt.Sprintf("--push-parallel: %q is not a positive number", v)}
		}
		parallels = append(parallels, n)
	}
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	a, engine, cleanup, err := benchApp(ctx, getenv, stderr, map[string]string{
		"FIELDCRM_ADDR": addr, "FIELDCRM_SYNC_PAGE_SIZE": strconv.Itoa(*page), "FIELDCRM_BODY_LIMIT": strconv.Itoa(64 << 20)})
	defer cleanup()
	if err != nil {
		return err
	}
	c, stopServe, err := listenForBench(ctx, a, addr)
	defer stopServe()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "fieldcrm bench sync: %s, %d customers + %d interactions, page %d\n", engine, *customers, *interactions, *page)

	rep, err := c.territory()
	if err != nil {
		return err
	}
	start := time.Now()
	ids, err := seed(ctx, a, rep, *customers, *interactions)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "seeded in %s\n\n", time.Since(start).Round(time.Millisecond))
	stopProfile, err := startCPUProfile(*cpuProfile)
	if err != nil {
		return err
	}
	defer stopProfile()
	fmt.Fprintf(stdout, "%-34s %10s %10s %12s %10s %10s\n", "operation", "records", "total", "records/s", "p50", "p99")
	row := func(name string, records int, total time.Duration, lat []time.Duration) {
		rate := float64(records) / total.Seconds()
		fmt.Fprintf(stdout, "%-34s %10d %10s %12.0f %10s %10s\n", name, records, total.Round(time.Millisecond), rate,
			percentile(lat, 50).Round(time.Microsecond), percentile(lat, 99).Round(time.Microsecond))
	}

	// 1. Initial sync of the territory, page by page.
	phone, err := c.login(rep.email, "bench-phone")
	if err != nil {
		return err
	}
	// The server runs in this process, so its heap can be watched page by page.
	var heap []string
	c.afterPage = func() {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		heap = append(heap, strconv.FormatUint(ms.HeapInuse>>20, 10))
	}
	start = time.Now()
	n, lat, cursor, err := c.pullAll(phone, "null")
	if err != nil {
		return err
	}
	c.afterPage = nil
	row("initial sync (pull from null)", n, time.Since(start), lat)
	fmt.Fprintf(stdout, "%-34s %s\n", "  heap in use after each page, MiB", strings.Join(heap, " "))

	// 2. Push of offline edits (once per --push-parallel value, each time
	// new values, so that every push writes).
	if len(parallels) == 0 {
		parallels = []int{a.Sync.PushParallel}
	}
	for round, parallel := range parallels {
		a.Sync.PushParallel = parallel
		rows := make([]any, *edits)
		for i := range rows {
			rows[i] = map[string]any{"id": ids[i%len(ids)], "_status": "updated", "_changed": "industry", "industry": fmt.Sprint("offline-", round, "-", i)}
		}
		t0 := time.Now()
		if err := c.push(phone, cursor, map[string]any{"customers": map[string]any{"updated": rows}}); err != nil {
			return err
		}
		pushTook := time.Since(t0)
		name := fmt.Sprintf("push of %d offline edits", *edits)
		if len(parallels) > 1 {
			name += fmt.Sprintf(" (%d at once)", parallel)
		}
		row(name, *edits, pushTook, []time.Duration{pushTook})
		if round < len(parallels)-1 {
			if _, _, cursor, err = c.pullAll(phone, cursor); err != nil {
				return err
			}
		}
	}
	if _, _, cursor, err = c.pullAll(phone, cursor); err != nil { // the echo of its own push
		return err
	}

	// 3. Delta pull of server edits (made through the service, as the REST API would).
	admin := models.Actor{UserID: rep.id, TenantID: rep.tenant, Role: models.RoleAdmin}
	for i := range *edits {
		if _, err := a.CRM.Customers.Mutate(ctx, admin, ids[(i+7)%len(ids)], func(c *models.Customer) error {
			c.Region = fmt.Sprint("server-", i)
			return nil
		}); err != nil {
			return err
		}
	}
	start = time.Now()
	n, lat, cursor, err = c.pullAll(phone, cursor)
	if err != nil {
		return err
	}
	row(fmt.Sprintf("delta pull of %d server edits", *edits), n, time.Since(start), lat)

	// 4. Pulls with nothing new.
	var noop []time.Duration
	start = time.Now()
	for range *noops {
		_, l, _, err := c.pullAll(phone, cursor)
		if err != nil {
			return err
		}
		noop = append(noop, l...)
	}
	row("no-op pull", 0, time.Since(start), noop)
	return nil
}

type benchRep struct{ id, email, tenant string }

// benchPassword is the password of the users territory makes.
const benchPassword = "bench password 1"

// startCPUProfile writes a CPU profile to path until stop is called; with no
// path it does nothing.
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// freeAddr returns a loopback address with a free port.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// listenForBench serves a's API on addr until stop is called and returns a
// client of it once it answers.
func listenForBench(ctx context.Context, a *app.App, addr string) (c *benchClient, stop func(), err error) {
	serveCtx, stop := context.WithCancel(ctx)
	go func() { _ = a.Server.Listen(serveCtx, addr) }()
	c = &benchClient{base: "http://" + addr, http: &http.Client{Timeout: 30 * time.Minute}}
	return c, stop, c.waitReady()
}

// benchApp starts fieldcrm's services (no HTTP listener) on a throwaway data
// directory: embedded SQLite, or FerretDB on PostgreSQL when
// FERRETDB_POSTGRESQL_URL is set, with the given settings and options on top. cleanup
// stops everything and removes the directory. A directory extra names
// (FIELDCRM_DATA_DIR, new or empty) is used instead and kept.
func benchApp(ctx context.Context, getenv func(string) string, stderr io.Writer, extra map[string]string, opts ...app.Option) (*app.App, string, func(), error) {
	dir := extra["FIELDCRM_DATA_DIR"]
	remove := func() { os.RemoveAll(dir) }
	var err error
	if dir != "" {
		if err := makeEmptyDir(dir); err != nil {
			return nil, "", func() {}, fmt.Errorf("the bench's data directory: %w: give a new one", err)
		}
		remove = func() {}
	} else if dir, err = os.MkdirTemp("", "fieldcrm-bench-*"); err != nil {
		return nil, "", func() {}, err
	}
	overrides := map[string]string{
		"FIELDCRM_DATA_DIR": dir, "FIELDCRM_LOG_LEVEL": "error", "MONGODB_URI": "",
		"MONGODB_DATABASE": "bench", "FIELDCRM_PASSWORD_MEMORY_KIB": "64", "FIELDCRM_PASSWORD_TIME": "1",
	}
	maps.Copy(overrides, extra)
	cfg, err := parseServeConfig(nil, func(k string) string {
		if v, ok := overrides[k]; ok {
			return v
		}
		return getenv(k)
	}, stderr)
	if err != nil {
		return nil, "", remove, err
	}
	engine := "FerretDB on SQLite"
	if cfg.FerretPostgreSQLURL != "" {
		engine = "FerretDB on PostgreSQL"
	}
	a, err := startApp(ctx, cfg, newLogger(cfg, io.Discard), opts...)
	return a, engine, func() { a.Close(ctx); remove() }, err
}

// seed writes the territory straight through the store, in batches, stamped
// with sync numbers as the service would, so that seeding 100,000 records
// takes a minute or two rather than the hours a duplicate check per customer
// would cost.
func seed(ctx context.Context, a *app.App, rep benchRep, customers, interactions int) ([]string, error) {
	st := models.Settings{}.WithDefaults()
	user, err := a.Store.User(ctx, rep.tenant, rep.id)
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	const batch = 500
	// write stamps n records made by build with sync numbers and stores them.
	write := func(coll string, n int, build func(i int) (models.Record, error)) error {
		for from := 0; from < n; from += batch {
			recs := make([]models.Record, 0, batch)
			var dones []func()
			for i := from; i < min(from+batch, n); i++ {
				rec, err := build(i)
				if err != nil {
					return err
				}
				seq, done, err := a.Sequencer.Begin(ctx, rep.tenant)
				if err != nil {
					return err
				}
				dones = append(dones, done)
				*rec.Header() = models.Meta{ID: rec.Header().ID, TenantID: rep.tenant, OwnerID: user.ID, TeamID: user.TeamID, Version: 1,
					CreatedAt: now, CreatedBy: user.ID, UpdatedAt: now, UpdatedBy: user.ID,
					Seq: seq, FieldSeqs: map[string]int64{"id": seq}}
				recs = append(recs, rec)
			}
			err := a.Store.InsertBatch(ctx, coll, recs, models.AuditEntry{Action: "seed"})
			for _, done := range dones {
				done()
			}
			if err != nil {
				return err
			}
		}
		return nil
	}
	ids := make([]string, customers)
	err = write(store.Customers, customers, func(i int) (models.Record, error) {
		c := &models.Customer{CustomerFields: models.CustomerFields{
			Name: fmt.Sprintf("Customer %06d", i), Industry: "retail", Region: "south",
			ContactPoints: models.ContactPoints{Phones: []models.Phone{{Label: "office", Number: fmt.Sprintf("139%08d", i)}}},
		}}
		if err := c.Prepare(st); err != nil {
			return nil, err
		}
		c.ID = models.NewID()
		ids[i] = c.ID
		c.Number = st.CustomerNumber.Format(int64(i+1), now)
		c.RefreshSearchKeys()
		return c, nil
	})
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(1, 2))
	err = write(store.Interactions, interactions, func(i int) (models.Record, error) {
		in := &models.Interaction{ChildFields: models.ChildFields{CustomerID: ids[rng.IntN(len(ids))]},
			Channel: "visit", OccurredAt: now, DurationSeconds: 600, Content: fmt.Sprint("visit ", i)}
		in.ID = models.NewID()
		return in, nil
	})
	return ids, err
}

type benchClient struct {
	base string
	http *http.Client
	// afterPage, when set, runs after each page pullAll receives.
	afterPage func()
}

func (c *benchClient) waitReady() error {
	for range 300 {
		if res, err := c.http.Get(c.base + "/readyz"); err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("server not ready")
}

func (c *benchClient) do(method, path, token string, body, out any) error {
	var r io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		r = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, c.base+path, r)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %d %s", method, path, res.StatusCode, raw)
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

// territory signs up a tenant with a manager, a team and a rep.
func (c *benchClient) territory() (benchRep, error) {
	const password = benchPassword
	var signup struct {
		Token string `json:"access_token"`
		User  struct {
			Tenant string `json:"tenant_id"`
		} `json:"user"`
	}
	if err := c.do("POST", "/v1/auth/signup", "", map[string]any{"company_name": "Bench", "name": "Admin", "email": "admin@bench.test", "password": password}, &signup); err != nil {
		return benchRep{}, err
	}
	var mgr, team, rep struct {
		ID string `json:"id"`
	}
	steps := []struct {
		path string
		body map[string]any
		out  any
	}{
		{"/v1/users", map[string]any{"email": "manager@bench.test", "name": "Manager", "password": password, "role": "manager"}, &mgr},
		{"/v1/teams", nil, &team},
		{"/v1/users", nil, &rep},
	}
	for i, s := range steps {
		switch i {
		case 1:
			s.body = map[string]any{"name": "Field", "manager_id": mgr.ID}
		case 2:
			s.body = map[string]any{"email": "rep@bench.test", "name": "Rep", "password": password, "role": "rep", "team_id": team.ID}
		}
		if err := c.do("POST", s.path, signup.Token, s.body, s.out); err != nil {
			return benchRep{}, err
		}
	}
	return benchRep{id: rep.ID, email: "rep@bench.test", tenant: signup.User.Tenant}, nil
}

func (c *benchClient) login(email, device string) (string, error) {
	var out struct {
		Token string `json:"access_token"`
	}
	err := c.do("POST", "/v1/auth/login", "", map[string]any{"email": email, "password": "bench password 1", "device_id": device}, &out)
	return out.Token, err
}

// pullAll pulls until has_more is false; it returns the records received,
// each page's latency and the final cursor.
func (c *benchClient) pullAll(token, cursor string) (int, []time.Duration, string, error) {
	records := 0
	var lat []time.Duration
	for {
		var out struct {
			Changes map[string]struct {
				Created, Updated []json.RawMessage
				Deleted          []string
			}
			Timestamp int64 `json:"timestamp"`
			HasMore   bool  `json:"has_more"`
		}
		t0 := time.Now()
		if err := c.do("GET", "/v1/sync/pull?last_pulled_at="+cursor, token, nil, &out); err != nil {
			return records, lat, cursor, err
		}
		lat = append(lat, time.Since(t0))
		if c.afterPage != nil {
			c.afterPage()
		}
		for _, tc := range out.Changes {
			records += len(tc.Created) + len(tc.Updated) + len(tc.Deleted)
		}
		cursor = strconv.FormatInt(out.Timestamp, 10)
		if !out.HasMore {
			return records, lat, cursor, nil
		}
	}
}

func (c *benchClient) push(token, cursor string, changes map[string]any) error {
	return c.do("POST", "/v1/sync/push?last_pulled_at="+cursor, token, map[string]any{"changes": changes}, nil)
}

func percentile(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	// Nearest rank: the smallest value with p% of them at or below it. An
	// index of (n-1)·p/100, rounded down, made the p95 of three reads their
	// median.
	rank := (len(s)*p + 99) / 100
	return s[max(rank, 1)-1]
}
