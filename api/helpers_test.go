package api_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/fieldcrm/fieldcrm/api"
	"github.com/fieldcrm/fieldcrm/internal/accounts"
	"github.com/fieldcrm/fieldcrm/internal/app"
	"github.com/fieldcrm/fieldcrm/internal/app/apptest"
	"github.com/fieldcrm/fieldcrm/internal/crm"
	"github.com/fieldcrm/fieldcrm/internal/store"
	"github.com/fieldcrm/fieldcrm/internal/testenv"
	"github.com/fieldcrm/fieldcrm/notify"
	"github.com/fieldcrm/fieldcrm/sync/watermelon"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

// harness is one API server on its own database and Redis prefix.
type harness struct {
	t      *testing.T
	server *api.Server
	store  *store.Store
	clock  *testenv.Clock
	// listening is the address of a real listener, once announce opened one.
	listening string
	redis     *testenv.Redis
	crm       *crm.Service
	sync      *watermelon.Engine
	// reminders and push
	schedule  *notify.Schedule
	scheduler *notify.Scheduler
	devices   *notify.Devices
	worker    *notify.Worker
	accounts  *accounts.Service
	cfg       harnessConfig
	// documented are the statuses the OpenAPI document gives each route:
	// every response do gets must be one of its route's.
	documented *statusBook
}

// harnessConfig is what tests may change of a harness's settings.
type harnessConfig struct {
	api      api.Config
	password accounts.PasswordParams
	hashing  accounts.HashLimit
	// loginIPMax and loginWindow are the per-address limit of failed
	// sign-ins; refreshMax that of refreshes with unknown tokens;
	// signupMax and signupWindow that of sign-ups.
	loginIPMax   int64
	loginWindow  time.Duration
	refreshMax   int64
	signupMax    int64
	signupWindow time.Duration
}

func defaultHarnessConfig() harnessConfig {
	return harnessConfig{
		api:      api.Config{Version: "test", ImportBodyLimit: testImportBodyLimit},
		password: accounts.CheapPasswordParams, loginIPMax: 10 * testLoginMaxFailures, loginWindow: testLoginWindow,
		refreshMax: 10 * testLoginMaxFailures, signupMax: 1000, signupWindow: time.Hour,
	}
}

// newHarnessWith starts a harness whose settings change sets.
func newHarnessWith(t *testing.T, change func(*harnessConfig)) *harness {
	t.Helper()
	cfg := defaultHarnessConfig()
	change(&cfg)
	return buildHarness(t, env.Store(t), env.Redis(t), testenv.NewClock(time.Now().UTC()), cfg)
}

// Login limits of the test servers. The window is long: tests move Redis's
// time past it (testenv.Redis.Advance) rather than wait, so a slow machine
// cannot see a window end before the test means it to.
const (
	// testPullPage is small so that tests page through pulls.
	testPullPage         = 7
	testLoginMaxFailures = 5
	testLoginWindow      = time.Hour
)

func newHarness(t *testing.T, checks ...api.Check) *harness {
	t.Helper()
	return buildHarness(t, env.Store(t), env.Redis(t), testenv.NewClock(time.Now().UTC()), defaultHarnessConfig(), checks...)
}

// twin returns a second API server on the same database, Redis and clock, as
// another replica would be: its own services, sequencer and caches.
func (h *harness) twin() *harness {
	h.t.Helper()
	return buildHarness(h.t, h.store, h.redis, h.clock, h.cfg)
}

// buildHarness builds the application through apptest, as serve builds
// it. It takes a testing.TB so that a fuzz target can build one harness for
// all its inputs (h.with gives each input's t).
func buildHarness(t testing.TB, st *store.Store, rd *testenv.Redis, clk *testenv.Clock, cfg harnessConfig, checks ...api.Check) *harness {
	t.Helper()
	ac := apptest.Config()
	ac.HTTP, ac.SyncPageSize = cfg.api, testPullPage
	ac.Accounts = app.Accounts{Password: cfg.password, Hashing: cfg.hashing,
		LoginPerEmail:     app.Limit{Max: testLoginMaxFailures, Window: cfg.loginWindow},
		LoginPerAddress:   app.Limit{Max: cfg.loginIPMax, Window: cfg.loginWindow},
		RefreshPerAddress: app.Limit{Max: cfg.refreshMax, Window: cfg.loginWindow},
		SignupPerAddress:  app.Limit{Max: cfg.signupMax, Window: cfg.signupWindow}}
	opts := []app.Option{app.WithClock(clk.Now), app.WithLogger(testLogger())}
	if checks != nil {
		opts = append(opts, app.WithHealthChecks(checks...))
	}
	a := apptest.New(t, ac, st, rd, opts...)
	a.Server.MarkStarted() // served through app.Test, not Serve
	ht, _ := t.(*testing.T)
	res, err := a.Server.App().Test(httptest.NewRequest("GET", "/v1/openapi.json", nil), -1)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	documented, err := newStatusBook(raw)
	if err != nil {
		t.Fatalf("read the OpenAPI document: %v", err)
	}
	return &harness{t: ht, server: a.Server, store: st, clock: clk, redis: rd, crm: a.CRM, sync: a.Sync,
		schedule: a.Schedule, scheduler: a.Scheduler, devices: a.Devices, worker: a.Worker, accounts: a.Accounts, cfg: cfg, documented: documented}
}

// with returns the harness reporting to t, for use inside subtests.
func (h *harness) with(t *testing.T) *harness {
	c := *h
	c.t = t
	return &c
}

// response is a decoded HTTP response.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response is not a JSON object (%d): %s", r.status, r.body)
	}
	return m
}

// testImportBodyLimit is the harness's largest upload: above the 8 MiB of
// other bodies, small enough for a test to exceed.
const testImportBodyLimit = 12 << 20

// do sends a request. body may be nil, a string or []byte (sent as is), or any
// value (encoded as JSON).
func (h *harness) do(method, path, token string, body any, headers ...string) response {
	h.t.Helper()
	var reader io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		reader = bytes.NewBufferString(b)
	case []byte:
		reader = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		reader = bytes.NewReader(raw)
	}
	req := httptest.NewRequest(method, path, reader)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := h.server.App().Test(req, -1)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if statuses, routed := h.documented.statuses(method, path); routed && !slices.Contains(statuses, strconv.Itoa(res.StatusCode)) {
		h.t.Errorf("%s %s answered %d, which the OpenAPI document does not list for it (%v): %s", method, path, res.StatusCode, statuses, raw)
	}
	if missing := h.documented.undocumentedHeaders(method, path, res.StatusCode, res.Header); missing != nil {
		h.t.Errorf("%s %s answered %d with headers %v, which the OpenAPI document does not list for it", method, path, res.StatusCode, missing)
	}
	return response{status: res.StatusCode, header: res.Header, body: raw}
}

// expect fails the test unless the response has the wanted status; error
// responses must also be problem documents with that status.
func (h *harness) expect(r response, want int, what string) {
	h.t.Helper()
	if r.status != want {
		h.t.Fatalf("%s: status %d, want %d; body %s", what, r.status, want, r.body)
	}
	if want >= 400 {
		if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
			h.t.Fatalf("%s: content type %q, want application/problem+json", what, ct)
		}
		p := r.json(h.t)
		if p["status"] != float64(want) || p["type"] == "" || p["title"] == "" {
			h.t.Fatalf("%s: not a problem document: %s", what, r.body)
		}
	}
}

// account is a signed-in user of a test tenant.
type account struct {
	id, email, password, access, refresh, tenant string
}

const testPassword = "correct horse battery"

func (h *harness) signup(company, email string) account {
	h.t.Helper()
	r := h.do("POST", "/v1/auth/signup", "", map[string]any{
		"company_name": company, "name": "Admin of " + company, "email": email, "password": testPassword,
	})
	h.expect(r, 201, "signup")
	m := r.json(h.t)
	user := m["user"].(map[string]any)
	return account{id: user["id"].(string), email: email, password: testPassword,
		access: m["access_token"].(string), refresh: m["refresh_token"].(string), tenant: user["tenant_id"].(string)}
}

func (h *harness) login(email, password string) account {
	h.t.Helper()
	r := h.do("POST", "/v1/auth/login", "", map[string]any{"email": email, "password": password, "device_id": "phone-1"})
	h.expect(r, 200, "login "+email)
	m := r.json(h.t)
	return account{email: email, password: password, access: m["access_token"].(string), refresh: m["refresh_token"].(string)}
}

// createUser creates a user as creator and signs them in.
func (h *harness) createUser(creator account, email, role, teamID string) account {
	h.t.Helper()
	body := map[string]any{"email": email, "name": "User " + email, "password": testPassword, "role": role}
	if teamID != "" {
		body["team_id"] = teamID
	}
	r := h.do("POST", "/v1/users", creator.access, body)
	h.expect(r, 201, "create user "+email)
	a := h.login(email, testPassword)
	a.id = r.json(h.t)["id"].(string)
	return a
}

func (h *harness) createTeam(admin account, name, managerID string) string {
	h.t.Helper()
	r := h.do("POST", "/v1/teams", admin.access, map[string]any{"name": name, "manager_id": managerID})
	h.expect(r, 201, "create team "+name)
	return r.json(h.t)["id"].(string)
}

// testLogger discards logs, unless FIELDCRM_TEST_LOG=1 asks for the errors
// (the stack of a 500, say) on stderr.
func testLogger() *slog.Logger {
	if os.Getenv("FIELDCRM_TEST_LOG") == "1" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	}
	return testenv.DiscardLogger()
}
