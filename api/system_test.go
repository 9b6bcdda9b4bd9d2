package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/fieldcrm/fieldcrm/api"
	"github.com/fieldcrm/fieldcrm/internal/app/apptest"
	"github.com/fieldcrm/fieldcrm/internal/testenv"
)

// Every route Fiber serves must be in the OpenAPI document, with its method.
func TestOpenAPIDocumentsEveryRegisteredRoute(t *testing.T) {
	h := newHarness(t)
	r := h.do("GET", "/v1/openapi.json", "", nil)
	h.expect(r, 200, "openapi")
	doc := r.json(t)
	if doc["openapi"] != "3.1.0" {
		t.Fatalf("openapi version %v", doc["openapi"])
	}
	paths := doc["paths"].(map[string]any)
	routes := h.server.App().GetRoutes(true)
	if len(routes) < 10 {
		t.Fatalf("only %d routes registered", len(routes))
	}
	for _, rt := range routes {
		if rt.Method == "HEAD" || rt.Path == "/" {
			continue // Fiber adds HEAD for GET; "/" is the middleware's catch-all
		}
		item, ok := paths[api.OpenAPIPath(rt.Path)].(map[string]any)
		if !ok {
			t.Errorf("route %s %s missing from the OpenAPI document", rt.Method, rt.Path)
			continue
		}
		if _, ok := item[strings.ToLower(rt.Method)]; !ok {
			t.Errorf("method %s of %s missing from the OpenAPI document", rt.Method, rt.Path)
		}
	}
	schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
	for _, name := range []string{"Problem", "User", "Team", "Tokens"} {
		if _, ok := schemas[name]; !ok {
			t.Errorf("schema %s missing", name)
		}
	}
	user := schemas["User"].(map[string]any)["properties"].(map[string]any)
	if _, leaked := user["password_hash"]; leaked {
		t.Error("User schema exposes password_hash")
	}
	if role := user["role"].(map[string]any); len(role["enum"].([]any)) != 3 {
		t.Errorf("role enum: %v", role)
	}
}

func TestRequestIDIsEchoedOrGenerated(t *testing.T) {
	h := newHarness(t)
	r := h.do("GET", "/healthz", "", nil, "X-Request-ID", "client-abc-123")
	if got := r.header.Get("X-Request-ID"); got != "client-abc-123" {
		t.Fatalf("echoed %q", got)
	}
	r = h.do("GET", "/v1/me", "", nil)
	id := r.header.Get("X-Request-ID")
	if len(id) < 10 || r.json(t)["request_id"] != id {
		t.Fatalf("generated id %q not in problem: %s", id, r.body)
	}
	r = h.do("GET", "/healthz", "", nil, "X-Request-ID", strings.Repeat("x", 500))
	if got := r.header.Get("X-Request-ID"); len(got) > 128 {
		t.Fatal("oversized client request id accepted")
	}
}

func TestMetricsCountRequestsByRouteTemplate(t *testing.T) {
	h := newHarness(t)
	a := h.signup("Acme", "ana@acme.test")
	h.do("GET", "/v1/users/"+a.id, a.access, nil)
	h.do("GET", "/v1/users/unknown", a.access, nil)
	if r := h.do("GET", "/metrics", "", nil); r.status != 404 {
		t.Fatalf("GET /metrics on the API's port: %d, want 404 (the metrics have a port of their own)", r.status)
	}
	text := scrape(t, h.server.SystemHandler())
	for _, want := range []string{
		`fieldcrm_http_requests_total{method="GET",route="/v1/users/:id",status="200"} 1`,
		`fieldcrm_http_requests_total{method="GET",route="/v1/users/:id",status="404"} 1`,
		`fieldcrm_http_requests_total{method="POST",route="/v1/auth/signup",status="201"} 1`,
		`fieldcrm_http_request_duration_seconds_bucket{method="GET",route="/v1/users/:id",le="+Inf"} 2`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s in\n%s", want, text)
		}
	}
	if strings.Contains(text, a.id) {
		t.Error("a raw id leaked into metric labels")
	}
}

// readyzWith is a harness whose /readyz pings a Redis of its own (mr) and
// a database that answers, with the given dependency grace.
func readyzWith(t *testing.T, grace time.Duration) (*harness, *miniredis.Miniredis) {
	t.Helper()
	mr := miniredis.RunT(t)
	client := redis.NewClient(&redis.Options{Addr: mr.Addr(), MaxRetries: -1})
	t.Cleanup(func() { _ = client.Close() })
	cfg := defaultHarnessConfig()
	cfg.api.DependencyGrace = grace
	checks := []api.Check{
		{Name: "mongodb", Ping: func(context.Context) error { return nil }},
		{Name: "redis", Ping: func(ctx context.Context) error { return client.Ping(ctx).Err() }},
	}
	return buildHarness(t, env.Store(t), env.Redis(t), testenv.NewClock(time.Now().UTC()), cfg, checks...), mr
}

// expectReady checks /readyz's status code and status, and returns its checks.
func (h *harness) expectReady(code int, status string) map[string]any {
	h.t.Helper()
	r := h.do("GET", "/readyz", "", nil)
	body := r.json(h.t)
	if r.status != code || body["status"] != status {
		h.t.Fatalf("readyz: %d %s, want %d %s", r.status, r.body, code, status)
	}
	checks, _ := body["checks"].(map[string]any)
	return checks
}

// A Redis that stops answering for a while is reported by /readyz and by
// fieldcrm_dependency_up, but does not make the process unready: every
// replica shares it, and taking them all out helps nobody. Only past the
// configured grace does it; with none configured, never.
func TestReadinessSurvivesADependencyBlip(t *testing.T) {
	h, mr := readyzWith(t, time.Minute)
	if checks := h.expectReady(200, "ok"); checks["redis"] != "ok" {
		t.Fatalf("checks %v", checks)
	}
	mr.Close() // Redis stops answering
	if checks := h.expectReady(200, "degraded"); !strings.HasPrefix(fmt.Sprint(checks["redis"]), "error for 0s") {
		t.Fatalf("the failing Redis is not reported: %v", checks)
	}
	if metrics := scrape(t, h.server.SystemHandler()); !strings.Contains(metrics, `fieldcrm_dependency_up{dependency="redis"} 0`) ||
		!strings.Contains(metrics, `fieldcrm_dependency_up{dependency="mongodb"} 1`) {
		t.Fatalf("metrics do not show the failing Redis:\n%s", metrics)
	}
	h.clock.Advance(50 * time.Second)
	if checks := h.expectReady(200, "degraded"); !strings.HasPrefix(fmt.Sprint(checks["redis"]), "error for 50s") {
		t.Fatalf("checks %v", checks)
	}
	if err := mr.Restart(); err != nil { // back within the grace
		t.Fatal(err)
	}
	h.expectReady(200, "ok")

	mr.Close() // and away for longer than the grace
	h.expectReady(200, "degraded")
	h.clock.Advance(time.Minute + time.Second)
	h.expectReady(503, "unavailable")
	if err := mr.Restart(); err != nil {
		t.Fatal(err)
	}
	h.expectReady(200, "ok")

	// With no grace (the default), a dependency outage never flips it.
	never, mr := readyzWith(t, 0)
	mr.Close()
	never.clock.Advance(24 * time.Hour)
	never.expectReady(200, "degraded")
	never.clock.Advance(24 * time.Hour)
	never.expectReady(200, "degraded")
}

// A process is not ready before it serves, and stops being ready the moment
// it is told to shut down, while its dependencies all answer.
func TestReadinessFlipsAtOnceOnShutdown(t *testing.T) {
	unstarted := apptest.New(t, apptest.Config(), env.Store(t), env.Redis(t)).Server
	if r := unstarted.Readiness(context.Background()); r.Ready || r.Status != api.StatusStarting {
		t.Fatalf("before Serve: %+v, want starting", r)
	}
	h, _ := readyzWith(t, 0)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- h.server.Serve(ctx, ln) }()
	if r := h.server.Readiness(context.Background()); !r.Ready || r.Status != api.StatusOK {
		t.Fatalf("serving: %+v", r)
	}
	stop()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	if r := h.server.Readiness(context.Background()); r.Ready || r.Status != api.StatusShuttingDown {
		t.Fatalf("after the stop: %+v, want shutting down", r)
	}
}

// A stop that comes while Serve is still starting must end it too: fasthttp's
// shutdown closes only the listeners its Serve has registered, so a stop
// before that left Serve waiting in Accept for good (CI once hung there for
// its 20 minutes under -race). Cancelled before Serve, the stop nearly
// always comes first; a few rounds, each with a server of its own (Serve runs
// once per server), make sure.
func TestServeEndsWhenStoppedBeforeItStarted(t *testing.T) {
	for round := range 5 {
		h := newHarness(t)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ctx, stop := context.WithCancel(context.Background())
		stop()
		served := make(chan error, 1)
		go func() { served <- h.server.Serve(ctx, ln) }()
		select {
		case err := <-served:
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: Serve still running 10 s after a stop that came before it started", round)
		}
	}
}

// /healthz fails when a watched loop stops turning, and only then.
func TestLivenessFailsWhenAWatchedLoopIsStuck(t *testing.T) {
	h, mr := readyzWith(t, 0)
	mr.Close() // a dependency outage does not matter to liveness
	var last atomic.Int64
	last.Store(time.Now().UnixNano())
	h.server.WatchLoop("reminder-worker", func() time.Time { return time.Unix(0, last.Load()) }, time.Minute)
	if r := h.do("GET", "/healthz", "", nil); r.status != 200 || r.json(t)["checks"].(map[string]any)["reminder-worker"] != "ok" {
		t.Fatalf("healthz: %d %s", r.status, r.body)
	}
	last.Store(time.Now().Add(-2 * time.Minute).UnixNano())
	if r := h.do("GET", "/healthz", "", nil); r.status != 503 || !strings.Contains(string(r.body), "stuck") {
		t.Fatalf("healthz with a stuck loop: %d %s", r.status, r.body)
	}
}

// A client may open a connection and never send on it (Go's transport dials a
// spare one when two requests race for a connection). Shutdown must not wait
// the 30-second read timeout for it: SIGTERM would end in "context deadline
// exceeded" after ShutdownTimeout (20 s), as CI once saw. A keep-alive
// connection that finished its request must not hold shutdown either.
func TestShutdownDoesNotWaitForConnectionsThatNeverSentARequest(t *testing.T) {
	h := newHarness(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	served := make(chan error, 1)
	go func() { served <- h.server.Serve(ctx, ln) }()

	client := &http.Client{Timeout: 10 * time.Second}
	res, err := client.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("healthz: %d", res.StatusCode)
	}
	silent, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()

	began := time.Now()
	stop()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("shutdown after %v: %v", time.Since(began), err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("shutdown still waits for a connection that never sent a request")
	}
	// The silent connection was closed by the server, not left dangling.
	_ = silent.SetReadDeadline(time.Now().Add(2 * time.Second))
	if n, err := silent.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("silent connection still open after shutdown (read %d, %v)", n, err)
	}
}

// scrape gets /metrics from the system handler (the metrics port).
func scrape(t *testing.T, system http.Handler) string {
	t.Helper()
	rec := httptest.NewRecorder()
	system.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("GET /metrics on the metrics port: %d %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}

// The metrics port answers /healthz and /readyz as the API's port does,
// failing checks and shutting down included: a worker, which serves no API,
// is probed there. A failing dependency is reported, and (with no grace
// configured) leaves the process ready (see Readiness).
func TestMetricsPortAnswersTheProbesAsTheAPIDoes(t *testing.T) {
	down := errors.New("connection refused")
	up := api.Check{Name: "mongodb", Ping: func(context.Context) error { return nil }}
	for _, c := range []struct {
		name     string
		check    api.Check
		stopping bool
		want     int
	}{
		{"all up", up, false, 200},
		{"redis down", api.Check{Name: "redis", Ping: func(context.Context) error { return down }}, false, 200},
		{"shutting down", up, true, 503},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, c.check)
			if c.stopping {
				h.server.MarkStopping()
			}
			for _, path := range []string{"/healthz", "/readyz"} {
				rec := httptest.NewRecorder()
				h.server.SystemHandler().ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
				onAPI := h.do("GET", path, "", nil)
				want := c.want
				if path == "/healthz" {
					want = 200
				}
				if rec.Code != want || onAPI.status != want {
					t.Errorf("%s: metrics port %d, API port %d, want %d", path, rec.Code, onAPI.status, want)
				}
				var body, apiBody map[string]any
				if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
					t.Fatalf("%s on the metrics port: %v %s", path, err, rec.Body)
				}
				_ = json.Unmarshal(onAPI.body, &apiBody)
				if fmt.Sprint(body) != fmt.Sprint(apiBody) {
					t.Errorf("%s: metrics port says %v, API port %v", path, body, apiBody)
				}
			}
		})
	}
}
