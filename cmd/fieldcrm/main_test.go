package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fieldcrm/fieldcrm/internal/testenv"
)

// serveProcess is one `fieldcrm serve` run inside the test process.
type serveProcess struct {
	base string
	// metrics is the base URL of the metrics port.
	metrics string
	cancel  context.CancelFunc
	done    chan error
	logs    *syncWriter
}

// isolatedVars is the environment of a serve run with its own data dir,
// database, Redis key prefix and, on PostgreSQL, its own PostgreSQL database
// (a FerretDB process must not share one; see testenv).
func isolatedVars(t *testing.T, name string) map[string]string {
	t.Helper()
	vars := map[string]string{
		"FIELDCRM_DATA_DIR":     t.TempDir(),
		"MONGODB_DATABASE":      testenv.UniqueName(name),
		"FIELDCRM_REDIS_PREFIX": testenv.UniqueName(name) + ":",
	}
	if os.Getenv("FERRETDB_POSTGRESQL_URL") != "" {
		pgURL, drop, err := testenv.NewPostgreSQLDatabase(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(drop)
		vars["FERRETDB_POSTGRESQL_URL"] = pgURL
		// A shared database: the secrets must be given (see sharedDatabase).
		vars["FIELDCRM_JWT_SECRET"] = "isolated-test-secret-of-more-than-32-bytes"
		vars["FIELDCRM_DATA_KEY"] = "3f9a1c7e5b2d8f4061a9c3e7b5d2f8a41c6e9b3d7f2a5c8e1b4d7a0f3c6e9b21"
	}
	return vars
}

// freeAddress is a loopback address with a port nothing listens on now.
func freeAddress(t *testing.T) string {
	t.Helper()
	return freeAddresses(t, 1)[0]
}

// freeAddresses are n loopback addresses with ports nothing listens on now,
// each a different port: they are all held until all are chosen (one closed
// before the next is chosen may be chosen again, and a process given it
// for its API and its metrics refuses to start).
func freeAddresses(t *testing.T, n int) []string {
	t.Helper()
	addrs := make([]string, n)
	for i := range addrs {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		addrs[i] = ln.Addr().String()
	}
	return addrs
}

// startServe runs serve with the given environment (plus the real servers of
// the CI run, when set), API and metrics each on a free port, and waits
// until /readyz answers 200 (a worker's on its metrics port, as it serves no
// API).
func startServe(t *testing.T, vars map[string]string) *serveProcess {
	t.Helper()
	free := freeAddresses(t, 2)
	addr, metricsAddr := free[0], free[1]
	envVars := map[string]string{
		"FIELDCRM_ADDR":                addr,
		"FIELDCRM_METRICS_ADDR":        metricsAddr,
		"FIELDCRM_PASSWORD_MEMORY_KIB": "64",
		"FIELDCRM_PASSWORD_TIME":       "1",
		"FERRETDB_POSTGRESQL_URL":      os.Getenv("FERRETDB_POSTGRESQL_URL"),
		"REDIS_URL":                    os.Getenv("REDIS_URL"),
	}
	for k, v := range vars {
		envVars[k] = v
	}
	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncWriter{w: &bytes.Buffer{}}
	p := &serveProcess{base: "http://" + addr, metrics: "http://" + envVars["FIELDCRM_METRICS_ADDR"], cancel: cancel, done: make(chan error, 1), logs: logs}
	go func() { p.done <- run(ctx, []string{"serve"}, func(k string) string { return envVars[k] }, logs, logs) }()
	ready := p.base + "/readyz"
	if envVars["FIELDCRM_ROLE"] == roleWorker {
		ready = p.metrics + "/readyz"
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get(ready)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return p
			}
		}
		select {
		case err := <-p.done:
			t.Fatalf("serve exited early: %v\n%s", err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve not ready in 30 s\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends the equivalent of SIGTERM and waits for a clean exit.
func (p *serveProcess) stop(t *testing.T) {
	t.Helper()
	p.cancel()
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("serve returned %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop within 30 s")
	}
}

func (p *serveProcess) call(t *testing.T, method, path, token string, body any) (int, map[string]any) {
	t.Helper()
	status, m, err := callJSON(p.base, method, path, token, body)
	if err != nil {
		t.Fatal(err)
	}
	return status, m
}

// callJSON sends a JSON request to a server and decodes its JSON answer.
func callJSON(base, method, path, token string, body any) (int, map[string]any, error) {
	var reader io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		reader = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, base+path, reader)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(res.Body).Decode(&m)
	return res.StatusCode, m, nil
}

func TestServeKeepsDataAndTokensAcrossRestart(t *testing.T) {
	vars := isolatedVars(t, "restart")
	first := startServe(t, vars)
	status, body := first.call(t, "POST", "/v1/auth/signup", "", map[string]any{
		"company_name": "Acme", "name": "Ana", "email": "ana@acme.test", "password": "correct horse battery",
	})
	if status != 201 {
		t.Fatalf("signup: %d %v", status, body)
	}
	access := body["access_token"].(string)
	first.stop(t)

	if vars["FIELDCRM_JWT_SECRET"] == "" { // generated: embedded SQLite only
		info, err := os.Stat(filepath.Join(vars["FIELDCRM_DATA_DIR"], "jwt-secret"))
		if err != nil || info.Mode().Perm() != 0o600 {
			t.Fatalf("JWT secret file: %v, mode %v", err, info.Mode())
		}
	}

	second := startServe(t, vars)
	defer second.stop(t)
	if status, body := second.call(t, "GET", "/v1/me", access, nil); status != 200 {
		t.Fatalf("token from before the restart: %d %v", status, body)
	}
	status, body = second.call(t, "POST", "/v1/auth/login", "", map[string]any{
		"email": "ana@acme.test", "password": "correct horse battery", "device_id": "d",
	})
	if status != 200 || body["access_token"] == "" {
		t.Fatalf("login after restart: %d %v", status, body)
	}
	if !strings.Contains(second.logs.String(), `"applied_now":null`) && !strings.Contains(second.logs.String(), `"applied_now":[]`) {
		t.Errorf("second start re-ran migrations:\n%s", second.logs.String())
	}
}

func TestHelpAndUsageErrors(t *testing.T) {
	var out, errOut bytes.Buffer
	getenv := func(string) string { return "" }
	err := run(context.Background(), []string{"serve", "--help"}, getenv, &out, &errOut)
	if !errors.Is(err, flag.ErrHelp) || exitCode(err) != 0 || !strings.Contains(errOut.String(), "FIELDCRM_ADDR") {
		t.Fatalf("serve --help: %v\n%s", err, errOut.String())
	}
	out.Reset()
	if err := run(context.Background(), []string{"--help"}, getenv, &out, &errOut); err != nil || !strings.Contains(out.String(), "serve") {
		t.Fatalf("--help: %v %s", err, out.String())
	}
	for _, args := range [][]string{{}, {"frobnicate"}, {"serve", "--no-such-flag"}, {"serve", "extra"}, {"migrate", "extra"}, {"migrate", "--no-such-flag"}} {
		err := run(context.Background(), args, getenv, &out, &errOut)
		if exitCode(err) != 2 {
			t.Errorf("%v: exit code %d (%v), want 2", args, exitCode(err), err)
		}
	}
	bad := map[string]string{"FIELDCRM_SHUTDOWN_TIMEOUT": "soon", "FIELDCRM_BODY_LIMIT": "-1", "FIELDCRM_LOG_FORMAT": "xml",
		"FIELDCRM_ROLE": "boss", "FIELDCRM_SQLITE_SYNCHRONOUS": "off", "FIELDCRM_REMINDER_RECONCILE_EVERY": "never",
		"FIELDCRM_SIGNUP": "maybe", "FIELDCRM_TRUSTED_PROXIES": "10.0.0.0/33", "FIELDCRM_PASSWORD_CONCURRENCY": "-1",
		"FIELDCRM_CORS_ORIGINS": "https://console.example.com/", "FIELDCRM_MIGRATE": "later", "FIELDCRM_MEMORY_LIMIT": "768Mi",
		"MONGODB_URI_FILE": "/nonexistent/mongodb-uri", "REDIS_URL_FILE": "/nonexistent/redis-url", "FIELDCRM_READY_DEPENDENCY_GRACE": "soon"}
	for k, v := range bad {
		err := run(context.Background(), []string{"serve"}, func(key string) string {
			if key == k {
				return v
			}
			return ""
		}, &out, &errOut)
		if exitCode(err) != 2 || !strings.Contains(err.Error(), k[len("FIELDCRM_"):]) && !strings.Contains(err.Error(), strings.ToLower(v)) {
			t.Errorf("%s=%s: %v", k, v, err)
		}
	}
}

func TestShortJWTSecretIsRefused(t *testing.T) {
	cfg := serveConfig{JWTSecret: "short"}
	secret, _, err := cfg.jwtSecret()
	if err != nil {
		t.Fatal(err)
	}
	if len(secret) >= 32 {
		t.Fatal("test premise")
	}
	var out bytes.Buffer
	err = run(context.Background(), []string{"serve"}, func(k string) string {
		return map[string]string{"FIELDCRM_JWT_SECRET": "short", "FIELDCRM_DATA_DIR": t.TempDir(), "FIELDCRM_ADDR": "127.0.0.1:0",
			"MONGODB_DATABASE": testenv.UniqueName("short")}[k]
	}, &out, &out)
	if err == nil || !strings.Contains(err.Error(), "at least 32") {
		t.Fatalf("got %v", err)
	}
}

// syncWriter lets the server's goroutines and the test share one log buffer.
type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.String()
}

func TestProbeAsksTheServer(t *testing.T) {
	p := startServe(t, isolatedVars(t, "probe"))
	addr := strings.TrimPrefix(p.base, "http://")
	getenv := func(k string) string {
		if k == "FIELDCRM_ADDR" {
			return addr
		}
		return ""
	}
	var out, errOut bytes.Buffer
	for _, path := range []string{"/readyz", "/healthz"} {
		out.Reset()
		if err := run(context.Background(), []string{"probe", "--path", path}, getenv, &out, &errOut); err != nil || !strings.Contains(out.String(), `"ok"`) {
			t.Fatalf("probe %s of a running server: %v %q %q", path, err, out.String(), errOut.String())
		}
	}
	p.stop(t)
	err := run(context.Background(), []string{"probe", "--timeout", "500ms"}, getenv, &out, &errOut)
	if err == nil || exitCode(err) != 1 {
		t.Fatalf("probe of a stopped server: %v", err)
	}
	if err := run(context.Background(), []string{"probe", "--path", "/admin"}, getenv, &out, &errOut); exitCode(err) != 2 {
		t.Fatalf("probe of another path: %v", err)
	}
}

// serveWithTenant starts serve (with a fixed JWT secret, so tokens outlive a
// restart) and signs up a tenant; it returns the server, the admin's token
// and the tenant id.
func serveWithTenant(t *testing.T, vars map[string]string, email string) (*serveProcess, string, string) {
	t.Helper()
	vars["FIELDCRM_JWT_SECRET"] = "cli-test-secret-of-at-least-32-bytes-long!"
	p := startServe(t, vars)
	status, body := p.call(t, "POST", "/v1/auth/signup", "", map[string]any{
		"company_name": "Acme", "name": "Ana", "email": email, "password": "correct horse battery",
	})
	if status != 201 {
		t.Fatalf("signup: %d %v", status, body)
	}
	return p, body["access_token"].(string), body["user"].(map[string]any)["tenant_id"].(string)
}

func TestExportCommandWritesTheTenantsCustomers(t *testing.T) {
	vars := isolatedVars(t, "export")
	p, token, tenant := serveWithTenant(t, vars, "ana@export.test")
	for _, name := range []string{"王小明", "Acme Pumps"} {
		if status, body := p.call(t, "POST", "/v1/customers", token, map[string]any{"name": name, "kind": "company"}); status != 201 {
			t.Fatalf("customer: %d %v", status, body)
		}
	}
	p.stop(t)

	getenv := func(k string) string { return vars[k] }
	out := filepath.Join(t.TempDir(), "customers.csv")
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"export", "--tenant", tenant, "--lang", "zh", "--out", out, "--filter", "q=Acme"}, getenv, &stdout, &stderr); err != nil {
		t.Fatalf("export: %v\n%s", err, stderr.String())
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	if !strings.HasPrefix(text, "\uFEFF客户编号,客户名称") || !strings.Contains(text, "Acme Pumps") || strings.Contains(text, "王小明") {
		t.Fatalf("exported file:\n%s", text)
	}
	for _, bad := range [][]string{{"export"}, {"export", "--tenant", "nosuchtenant"}, {"export", "--tenant", tenant, "--format", "pdf"}, {"export", "--tenant", tenant, "--filter", "nokey"}} {
		if err := run(context.Background(), bad, getenv, &stdout, &stderr); err == nil {
			t.Errorf("%v succeeded", bad)
		}
	}

	p = startServe(t, vars)
	defer p.stop(t)
	_, audit := p.call(t, "GET", "/v1/audit?limit=50", token, nil)
	found := false
	for _, e := range audit["data"].([]any) {
		e := e.(map[string]any)
		found = found || (e["action"] == "export customers" && e["actor_id"] == cliActorID)
	}
	if !found {
		t.Fatalf("the export is not in the audit log: %v", audit)
	}
}

func TestImportCommandReadsASpreadsheet(t *testing.T) {
	vars := isolatedVars(t, "import")
	p, token, tenant := serveWithTenant(t, vars, "ana@import.test")
	p.stop(t)

	dir := t.TempDir()
	file := filepath.Join(dir, "customers.csv")
	csv := "\uFEFFName,Mobile,Stage\nAcme Pumps,020 8888 6666,lead\nBad Phone,12,lead\nValve Co,,nonsense\nAcme Pumps,020 8888 6666,lead\n"
	if err := os.WriteFile(file, []byte(csv), 0o600); err != nil {
		t.Fatal(err)
	}
	getenv := func(k string) string { return vars[k] }
	failures := filepath.Join(dir, "failures.csv")
	var stdout, stderr bytes.Buffer
	args := []string{"import", "--tenant", tenant, "--file", file, "--as", "ana@import.test", "--failures", failures}
	if err := run(context.Background(), append(args, "--dry-run"), getenv, &stdout, &stderr); err != nil {
		t.Fatalf("dry run: %v\n%s", err, stderr.String())
	}
	if err := run(context.Background(), args, getenv, &stdout, &stderr); err != nil {
		t.Fatalf("import: %v\n%s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "4 rows: 1 created, 0 merged, 1 skipped, 2 failed (dry run") ||
		!strings.Contains(lines[1], "4 rows: 1 created, 0 merged, 1 skipped, 2 failed") || strings.Contains(lines[1], "dry run") {
		t.Fatalf("summaries:\n%s", stdout.String())
	}
	if !strings.Contains(stderr.String(), "4/4 rows") {
		t.Errorf("no progress bar:\n%s", stderr.String())
	}
	report, _ := os.ReadFile(failures)
	if !strings.Contains(string(report), "3,Mobile,12,") || !strings.Contains(string(report), "4,Stage,nonsense,") ||
		// Line 5 is line 2 again: the same row, so the same record.
		!regexp.MustCompile(`\n5,,,imported before,skipped,\w+,C\S+\r?\n`).Match(report) {
		t.Fatalf("failures file:\n%s", report)
	}
	for _, bad := range [][]string{{"import", "--tenant", tenant}, {"import", "--tenant", tenant, "--file", file, "--as", "nobody@x.test"},
		{"import", "--tenant", tenant, "--file", filepath.Join(dir, "missing.csv")}, {"import", "--tenant", tenant, "--file", file, "--on-duplicate", "maybe"}} {
		if err := run(context.Background(), bad, getenv, &stdout, &stderr); err == nil {
			t.Errorf("%v succeeded", bad)
		}
	}

	p = startServe(t, vars)
	defer p.stop(t)
	_, list := p.call(t, "GET", "/v1/customers?q=Acme", token, nil)
	if n := len(list["data"].([]any)); n != 1 {
		t.Fatalf("%d Acme Pumps after the import", n)
	}
}

func TestImportCommandReadsRecordsOfCustomers(t *testing.T) {
	vars := isolatedVars(t, "importkind")
	p, token, tenant := serveWithTenant(t, vars, "ana@importkind.test")
	status, acme := p.call(t, "POST", "/v1/customers", token, map[string]any{"name": "Acme Pumps", "kind": "company", "company_name": "Acme Pumps"})
	if status != 201 {
		t.Fatalf("customer: %d %v", status, acme)
	}
	p.stop(t)

	file := filepath.Join(t.TempDir(), "orders.csv")
	if err := os.WriteFile(file, []byte("Company,Order No.,Order Date,Amount\nAcme Pumps,SO-1,2026-01-05,\"1,280.50\"\nNobody Ltd,SO-2,2026-01-06,10\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	getenv := func(k string) string { return vars[k] }
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"import", "--tenant", tenant, "--file", file, "--kind", "orders"}, getenv, &stdout, &stderr); err != nil {
		t.Fatalf("import: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "2 rows: 1 created, 0 merged, 0 skipped, 1 failed") {
		t.Fatalf("summary: %s", stdout.String())
	}
	if err := run(context.Background(), []string{"import", "--tenant", tenant, "--file", file, "--kind", "invoices"}, getenv, &stdout, &stderr); err == nil {
		t.Fatal("an import of invoices succeeded")
	}
	p = startServe(t, vars)
	defer p.stop(t)
	_, orders := p.call(t, "GET", "/v1/orders?customer_id="+acme["id"].(string), token, nil)
	if list := orders["data"].([]any); len(list) != 1 || list[0].(map[string]any)["amount"] != 128050.0 {
		t.Fatalf("Acme's orders %v", orders)
	}
}

// TestSharedDatabaseNeedsGivenSecrets: with MONGODB_URI or
// FERRETDB_POSTGRESQL_URL set (replicas share the database), a JWT secret or
// data key that is missing, short or an example value stops start-up with a
// message naming the setting, before any connection to the database is
// tried and without generating anything in the data dir.
func TestSharedDatabaseNeedsGivenSecrets(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var dials sync.WaitGroup
	var dialed int
	var mu sync.Mutex
	dials.Add(1)
	go func() {
		defer dials.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			dialed++
			mu.Unlock()
			c.Close()
		}
	}()
	goodJWT := "a-real-secret-made-of-forty-random-bytes-Zq8"
	goodKey := "7c1e5b0a9f3d42e68b17c4a2d95f0e3b6a48c1d7e2f9b05a3c6d8e1f4a7b2c90"
	cases := []struct {
		name, jwt, jwtFile, key, want string
	}{
		{"no secrets", "", "", "", "FIELDCRM_JWT_SECRET (or FIELDCRM_JWT_SECRET_FILE) is not set"},
		{"no data key", goodJWT, "", "", "FIELDCRM_DATA_KEY (or FIELDCRM_DATA_KEY_FILE) is not set"},
		{"short JWT secret", "too-short", "", goodKey, "at least 32"},
		{"example JWT secret", "change-me-to-at-least-32-random-bytes-base64", "", goodKey, "FIELDCRM_JWT_SECRET looks like a placeholder"},
		{"example JWT secret in a file", "", "change-me-to-at-least-32-random-bytes-base64\n", goodKey, "FIELDCRM_JWT_SECRET_FILE"},
		{"all-zero data key", goodJWT, "", strings.Repeat("0", 64), "FIELDCRM_DATA_KEY looks like a placeholder"},
		{"repeated data key", goodJWT, "", strings.Repeat("5a", 32), "FIELDCRM_DATA_KEY looks like a placeholder"},
		{"data key not hex", goodJWT, "", "not-hex", "64 hex digits"},
	}
	// Both settings that let replicas share the database, each pointing at
	// the listener that counts dials.
	shared := map[string]string{
		"MONGODB_URI":             "mongodb://" + ln.Addr().String() + "/?serverSelectionTimeoutMS=300&connectTimeoutMS=300",
		"FERRETDB_POSTGRESQL_URL": "postgres://fieldcrm@" + ln.Addr().String() + "/fieldcrm?connect_timeout=1",
	}
	for setting, url := range shared {
		for _, c := range cases {
			t.Run(setting+"/"+c.name, func(t *testing.T) {
				dataDir := t.TempDir()
				vars := map[string]string{
					setting:               url,
					"MONGODB_DATABASE":    testenv.UniqueName("secrets"),
					"FIELDCRM_DATA_DIR":   dataDir,
					"FIELDCRM_ADDR":       "127.0.0.1:0",
					"FIELDCRM_JWT_SECRET": c.jwt,
					"FIELDCRM_DATA_KEY":   c.key,
				}
				if c.jwtFile != "" {
					path := filepath.Join(t.TempDir(), "jwt")
					if err := os.WriteFile(path, []byte(c.jwtFile), 0o600); err != nil {
						t.Fatal(err)
					}
					vars["FIELDCRM_JWT_SECRET_FILE"] = path
				}
				var out bytes.Buffer
				err := run(context.Background(), []string{"serve"}, func(k string) string { return vars[k] }, &out, &out)
				if err == nil || !strings.Contains(err.Error(), c.want) {
					t.Fatalf("got %v, want an error containing %q", err, c.want)
				}
				if entries, _ := os.ReadDir(dataDir); len(entries) > 0 {
					t.Errorf("data dir holds %v: nothing may be generated", entries)
				}
			})
		}
	}
	ln.Close()
	dials.Wait()
	if dialed > 0 {
		t.Errorf("the database was dialled %d times before the secrets were checked", dialed)
	}
}

// TestSignupOffAnswers403: FIELDCRM_SIGNUP=off closes POST /v1/auth/signup.
func TestSignupOffAnswers403(t *testing.T) {
	vars := isolatedVars(t, "signupoff")
	vars["FIELDCRM_SIGNUP"] = "off"
	p := startServe(t, vars)
	defer p.stop(t)
	status, body := p.call(t, "POST", "/v1/auth/signup", "", map[string]any{
		"company_name": "Acme", "name": "Ana", "email": "ana@acme.test", "password": "correct horse battery",
	})
	if status != 403 || body["type"] != "/problems/signup-closed" {
		t.Fatalf("sign-up while off: %d %v", status, body)
	}
}

// A worker process serves its health and metrics on the metrics port, and
// no API: its probes (and the image's health check, `fieldcrm probe`, which
// asks a worker's metrics port) work, and nothing listens on the API's port.
func TestWorkerServesHealthAndMetricsOnly(t *testing.T) {
	vars := isolatedVars(t, "worker")
	vars["FIELDCRM_ROLE"] = "worker"
	p := startServe(t, vars) // waits for /readyz on the metrics port
	defer p.stop(t)
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/metrics": 200,
		"/v1/auth/login": 404, "/v1/customers": 404, "/v1/openapi.json": 404} {
		method := "GET"
		if path == "/v1/auth/login" {
			method = "POST"
		}
		req, _ := http.NewRequest(method, p.metrics+path, strings.NewReader(`{}`))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != want {
			t.Errorf("%s %s on a worker's metrics port: %d, want %d", method, path, res.StatusCode, want)
		}
	}
	if res, err := http.Get(p.base + "/healthz"); err == nil {
		res.Body.Close()
		t.Errorf("a worker answers on the API's port: %d", res.StatusCode)
	}
	getenv := func(k string) string {
		return map[string]string{"FIELDCRM_ROLE": "worker", "FIELDCRM_ADDR": strings.TrimPrefix(p.base, "http://"),
			"FIELDCRM_METRICS_ADDR": strings.TrimPrefix(p.metrics, "http://")}[k]
	}
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"probe"}, getenv, &out, &errOut); err != nil {
		t.Fatalf("probe of a worker: %v %s", err, errOut.String())
	}
	if !strings.Contains(out.String(), p.metrics+"/readyz") {
		t.Errorf("probe of a worker asked %q, want its metrics port", out.String())
	}
}

// FIELDCRM_METRICS_ADDR=off serves no metrics port, but a worker needs one.
func TestMetricsAddrOffIsRefusedForAWorker(t *testing.T) {
	cfg, err := parseServeConfig(nil, func(k string) string {
		return map[string]string{"FIELDCRM_METRICS_ADDR": "off"}[k]
	}, io.Discard)
	if err != nil || cfg.MetricsAddr != metricsOff {
		t.Fatalf("off for role all: %v %q", err, cfg.MetricsAddr)
	}
	for _, bad := range []map[string]string{
		{"FIELDCRM_METRICS_ADDR": "off", "FIELDCRM_ROLE": "worker"},
		{"FIELDCRM_METRICS_ADDR": "9090"},
		{"FIELDCRM_METRICS_ADDR": ":8080"},
		{"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"},
	} {
		if _, err := parseServeConfig(nil, func(k string) string { return bad[k] }, io.Discard); exitCode(err) != 2 {
			t.Errorf("%v: %v, want a usage error", bad, err)
		}
	}
}

// A metrics port another process holds stops start-up with a message that
// names the setting, rather than a server nobody can scrape or probe.
func TestServeStopsWhenTheMetricsPortIsTaken(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	vars := isolatedVars(t, "metricstaken")
	vars["FIELDCRM_ADDR"], vars["FIELDCRM_METRICS_ADDR"] = freeAddress(t), taken.Addr().String()
	vars["FIELDCRM_PASSWORD_MEMORY_KIB"], vars["FIELDCRM_PASSWORD_TIME"] = "64", "1"
	var out bytes.Buffer
	err = run(context.Background(), []string{"serve"}, func(k string) string { return vars[k] }, &out, &out)
	if err == nil || !strings.Contains(err.Error(), "FIELDCRM_METRICS_ADDR") {
		t.Fatalf("serve with its metrics port taken: %v", err)
	}
}

func TestConnectionStringsFromFiles(t *testing.T) {
	dir := t.TempDir()
	mongoFile, redisFile := filepath.Join(dir, "mongodb-uri"), filepath.Join(dir, "redis-url")
	if err := os.WriteFile(mongoFile, []byte("mongodb://fieldcrm:s3cret@mongo1:27017/?replicaSet=rs0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(redisFile, []byte("redis://:s3cret@redis:6379/0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"MONGODB_URI_FILE": mongoFile, "REDIS_URL_FILE": redisFile}
	cfg, err := parseServeConfig(nil, func(k string) string { return vars[k] }, io.Discard)
	if err != nil || cfg.MongoURI != "mongodb://fieldcrm:s3cret@mongo1:27017/?replicaSet=rs0" || cfg.RedisURL != "redis://:s3cret@redis:6379/0" {
		t.Fatalf("from files: %q %q %v", cfg.MongoURI, cfg.RedisURL, err)
	}
	vars["MONGODB_URI"] = "mongodb://elsewhere:27017"
	if _, err := parseServeConfig(nil, func(k string) string { return vars[k] }, io.Discard); err == nil || !strings.Contains(err.Error(), "keep one") {
		t.Errorf("MONGODB_URI and its file both set: %v", err)
	}
}

func TestProbeAddressFollowsTheRole(t *testing.T) {
	env := func(vars map[string]string) func(string) string { return func(k string) string { return vars[k] } }
	for _, c := range []struct {
		role, given string
		vars        map[string]string
		want        string
	}{
		{role: "all", want: ":8080"},
		{role: "api", vars: map[string]string{"FIELDCRM_ADDR": ":8181", "FIELDCRM_METRICS_ADDR": ":9191"}, want: ":8181"},
		{role: "worker", vars: map[string]string{"FIELDCRM_ADDR": ":8181"}, want: ":9090"},
		{role: "worker", vars: map[string]string{"FIELDCRM_ADDR": ":8181", "FIELDCRM_METRICS_ADDR": "127.0.0.1:9191"}, want: "127.0.0.1:9191"},
		{role: "worker", given: "10.1.2.3:7000", want: "10.1.2.3:7000"},
	} {
		got, err := probeAddr(c.role, c.given, env(c.vars))
		if err != nil || got != c.want {
			t.Errorf("role %s, --addr %q, %v: %q %v, want %q", c.role, c.given, c.vars, got, err, c.want)
		}
	}
	if _, err := probeAddr("boss", "", env(nil)); exitCode(err) != 2 {
		t.Errorf("unknown role: %v", err)
	}
}
