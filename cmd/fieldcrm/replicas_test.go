package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fieldcrm/fieldcrm/internal/app"
	"github.com/fieldcrm/fieldcrm/internal/testenv"
)

// replicaChildVar makes the test binary act as `fieldcrm serve` (see TestMain):
// the two-replica tests start real processes they can kill, without a build step.
const replicaChildVar = "FIELDCRM_TEST_REPLICA"

func TestMain(m *testing.M) {
	if os.Getenv(replicaChildVar) == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err := run(ctx, []string{"serve"}, os.Getenv, os.Stdout, os.Stderr)
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, "fieldcrm:", err)
			os.Exit(exitCode(err))
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// replica is one `fieldcrm serve` in a process of its own.
type replica struct {
	name string
	// dataDir is the replica's data directory; empty: a new one each launch.
	dataDir string
	base    string
	metrics string // the metrics port's base URL
	cmd     *exec.Cmd
	logs    *syncWriter
	exited  chan error
}

// startReplicas starts n serve processes together (so they race through
// start-up, as replicas of a rollout do) sharing the environment shared, each
// with its own port and data directory, and waits until all are ready.
func startReplicas(t *testing.T, n int, shared map[string]string) []*replica {
	t.Helper()
	var env []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); !strings.HasPrefix(k, "FIELDCRM_") && !strings.HasPrefix(k, "MONGODB_") &&
			!strings.HasPrefix(k, "FCM_") && k != "REDIS_URL" && k != "FERRETDB_POSTGRESQL_URL" {
			env = append(env, kv)
		}
	}
	env = append(env, replicaChildVar+"=1")
	for k, v := range shared {
		env = append(env, k+"="+v)
	}
	replicas := make([]*replica, n)
	for i := range replicas {
		r := &replica{name: fmt.Sprintf("replica-%c", 'a'+i)}
		r.launch(t, env)
		t.Cleanup(func() { r.kill(t) })
		replicas[i] = r
	}
	for _, r := range replicas {
		r.waitReady(t, env)
	}
	return replicas
}

// launch starts the replica's process on a free port.
func (r *replica) launch(t *testing.T, env []string) {
	t.Helper()
	free := freeAddresses(t, 2)
	addr := free[0]
	r.base = "http://" + addr
	r.logs = &syncWriter{w: &bytes.Buffer{}}
	r.exited = make(chan error, 1)
	r.cmd = exec.Command(os.Args[0], "-test.run=^$")
	dataDir := r.dataDir
	if dataDir == "" {
		dataDir = t.TempDir()
	}
	r.metrics = "http://" + free[1]
	r.cmd.Env = append(slices.Clone(env), "FIELDCRM_ADDR="+addr, "FIELDCRM_METRICS_ADDR="+strings.TrimPrefix(r.metrics, "http://"), "FIELDCRM_DATA_DIR="+dataDir)
	r.cmd.Stdout, r.cmd.Stderr = r.logs, r.logs
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", r.name, err)
	}
	exited := r.exited
	cmd := r.cmd
	go func() { exited <- cmd.Wait() }()
}

func (r *replica) ready() bool {
	res, err := http.Get(r.base + "/readyz")
	if err != nil {
		return false
	}
	res.Body.Close()
	return res.StatusCode == 200
}

// kill ends the process at once, as a crash or an OOM kill would.
func (r *replica) kill(t *testing.T) {
	t.Helper()
	if r.cmd.ProcessState != nil {
		return
	}
	_ = r.cmd.Process.Kill()
	select {
	case <-r.exited:
	case <-time.After(30 * time.Second):
		t.Errorf("%s did not die", r.name)
	}
}

// call sends a JSON request and decodes the JSON answer. A transport error
// (the process is gone) comes back as status 0.
func (r *replica) call(t *testing.T, method, path, token string, body any) (int, map[string]any) {
	t.Helper()
	status, m, err := callJSON(r.base, method, path, token, body)
	if err != nil {
		return 0, map[string]any{"transport_error": err.Error()}
	}
	return status, m
}

func (r *replica) must(t *testing.T, want int, method, path, token string, body any) map[string]any {
	t.Helper()
	status, m := r.call(t, method, path, token, body)
	if status != want {
		t.Fatalf("%s %s %s: %d %v, want %d", r.name, method, path, status, m, want)
	}
	return m
}

// TestTwoReplicas runs two `fieldcrm serve` processes on one FerretDB-on-
// PostgreSQL database and one real Redis, and drives them alternately. It needs
// the real servers (.ci/run's second pass sets REDIS_URL and
// FERRETDB_POSTGRESQL_URL): the embedded engines live inside one process.
func TestTwoReplicas(t *testing.T) {
	if os.Getenv("REDIS_URL") == "" || os.Getenv("FERRETDB_POSTGRESQL_URL") == "" {
		t.Skip("two replicas share a real Redis and FerretDB on PostgreSQL: set REDIS_URL and FERRETDB_POSTGRESQL_URL (.ci/run does)")
	}
	pgURL, drop, err := testenv.NewPostgreSQLDatabase(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(drop)
	fcm := newBenchFCM()
	t.Cleanup(fcm.srv.Close)
	prefix := testenv.UniqueName("replicas") + ":"
	t.Cleanup(func() { deleteRedisKeys(t, prefix) })
	replicas := startReplicas(t, 2, map[string]string{
		"FERRETDB_POSTGRESQL_URL":      pgURL,
		"REDIS_URL":                    os.Getenv("REDIS_URL"),
		"MONGODB_DATABASE":             "fieldcrm",
		"FIELDCRM_REDIS_PREFIX":        prefix,
		"FIELDCRM_JWT_SECRET":          "replicas-share-this-secret-of-more-than-32-bytes",
		"FIELDCRM_DATA_KEY":            "5a0c3e81f7b24d96a1e5c8f03b7d92a64e1f8c5b3a7d0e296f4b8c1a5e3d7f02",
		"FIELDCRM_PASSWORD_MEMORY_KIB": "64",
		"FIELDCRM_PASSWORD_TIME":       "1",
		"FIELDCRM_LOGIN_MAX_FAILURES":  "4",
		"FIELDCRM_LOG_LEVEL":           "warn",
		"FCM_PROJECT_ID":               "bench",
		"FCM_ENDPOINT":                 fcm.srv.URL,
	})
	a, b := replicas[0], replicas[1]

	t.Run("sync through one and pull through the other converges", func(t *testing.T) {
		testReplicasConverge(t, a, b)
	})
	t.Run("a reminder is pushed once per device", func(t *testing.T) {
		testReplicasPushOnce(t, a, b, fcm)
	})
	t.Run("the sign-in failure limit holds across both", func(t *testing.T) {
		email := "limits@replicas.test"
		signup(t, a, "Limits Ltd", email)
		for i := range 4 {
			r := []*replica{a, b}[i%2]
			r.must(t, 401, "POST", "/v1/auth/login", "", map[string]any{"email": email, "password": "wrong password!", "device_id": "x"})
		}
		for _, r := range []*replica{a, b} {
			r.must(t, 429, "POST", "/v1/auth/login", "", map[string]any{"email": email, "password": replicaPassword, "device_id": "x"})
		}
	})
	t.Run("a refresh token rotated on one is rejected on the other", func(t *testing.T) {
		first := signup(t, a, "Rotation Ltd", "rotation@replicas.test")
		second := a.must(t, 200, "POST", "/v1/auth/refresh", "", map[string]any{"refresh_token": first["refresh_token"]})
		b.must(t, 401, "POST", "/v1/auth/refresh", "", map[string]any{"refresh_token": first["refresh_token"]})
		// Reuse revoked the session everywhere, the new token included.
		a.must(t, 401, "POST", "/v1/auth/refresh", "", map[string]any{"refresh_token": second["refresh_token"]})
		a.must(t, 401, "GET", "/v1/me", second["access_token"].(string), nil)
	})
	t.Run("killing one mid-push loses nothing acknowledged", func(t *testing.T) {
		testReplicaKilledMidPush(t, a, b)
	})
	t.Run("the survivor still starts and stops cleanly", func(t *testing.T) {
		if err := b.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-b.exited:
			if err != nil {
				t.Fatalf("%s after SIGTERM: %v\n%s", b.name, err, b.logs.String())
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%s did not stop on SIGTERM", b.name)
		}
	})
}

const replicaPassword = "correct horse battery"

func signup(t *testing.T, r *replica, company, email string) map[string]any {
	t.Helper()
	return r.must(t, 201, "POST", "/v1/auth/signup", "", map[string]any{
		"company_name": company, "name": "Admin", "email": email, "password": replicaPassword,
	})
}

func login(t *testing.T, r *replica, email, device string) string {
	t.Helper()
	m := r.must(t, 200, "POST", "/v1/auth/login", "", map[string]any{"email": email, "password": replicaPassword, "device_id": device})
	return m["access_token"].(string)
}

// phone is a WatermelonDB-like client of the customers table: its local copy,
// its cursor, and the session of its device.
type phone struct {
	token  string
	cursor string
	local  map[string]map[string]any
}

func newPhone(t *testing.T, r *replica, email, device string) *phone {
	return &phone{token: login(t, r, email, device), cursor: "null", local: map[string]map[string]any{}}
}

// pull pages through r until nothing more remains and applies the customers.
func (p *phone) pull(t *testing.T, r *replica) {
	t.Helper()
	for pages := 0; ; pages++ {
		if pages > 50 {
			t.Fatal("pull never ends")
		}
		status, m := r.call(t, "GET", "/v1/sync/pull?last_pulled_at="+p.cursor+"&schema_version=2&migration=null", p.token, nil)
		if status != 200 {
			t.Fatalf("%s pull: %d %v", r.name, status, m)
		}
		customers, _ := m["changes"].(map[string]any)["customers"].(map[string]any)
		for _, kind := range []string{"created", "updated"} {
			list, _ := customers[kind].([]any)
			for _, rec := range list {
				rec := rec.(map[string]any)
				p.local[rec["id"].(string)] = rec
			}
		}
		deleted, _ := customers["deleted"].([]any)
		for _, id := range deleted {
			delete(p.local, id.(string))
		}
		p.cursor = fmt.Sprint(int64(m["timestamp"].(float64)))
		if m["has_more"] != true {
			return
		}
	}
}

// push sends changes of the customers table and applies them locally, as
// WatermelonDB keeps its own records; it returns the status.
func (p *phone) push(t *testing.T, r *replica, created, updated []map[string]any, deleted []string) (int, map[string]any) {
	t.Helper()
	body := map[string]any{"changes": map[string]any{"customers": map[string]any{
		"created": orEmpty(created), "updated": orEmpty(updated), "deleted": orEmpty(deleted),
	}}}
	status, m := r.call(t, "POST", "/v1/sync/push?last_pulled_at="+p.cursor, p.token, body)
	if status == 200 {
		for _, rec := range slices.Concat(created, updated) {
			local := p.local[rec["id"].(string)]
			if local == nil {
				local = map[string]any{}
				p.local[rec["id"].(string)] = local
			}
			for k, v := range rec {
				local[k] = v
			}
		}
		for _, id := range deleted {
			delete(p.local, id)
		}
	}
	return status, m
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func newCustomerRow(id string) map[string]any {
	return map[string]any{"id": id, "_status": "created", "_changed": "", "name": "Customer " + id, "kind": "company", "region": "start"}
}

// testReplicasConverge: three phones sync for several rounds, each round
// pulling through one replica and pushing through the other, concurrently;
// creates, edits of the same and of different customers, and deletes. At the
// end every phone holds exactly what a fresh full pull returns.
func testReplicasConverge(t *testing.T, a, b *replica) {
	email := "converge@replicas.test"
	signup(t, a, "Converge Ltd", email)
	phones := make([]*phone, 3)
	for i := range phones {
		phones[i] = newPhone(t, []*replica{a, b}[i%2], email, fmt.Sprintf("phone-%d", i))
		phones[i].pull(t, a)
	}
	rng := rand.New(rand.NewPCG(7, 11))
	seeds := make([]uint64, len(phones))
	for i := range seeds {
		seeds[i] = rng.Uint64()
	}
	const rounds = 4
	for round := range rounds {
		var wg sync.WaitGroup
		errs := make(chan string, len(phones))
		for i, p := range phones {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(seeds[i], uint64(round)))
				pullVia, pushVia := []*replica{a, b}[(i+round)%2], []*replica{a, b}[(i+round+1)%2]
				p.pull(t, pullVia)
				var created, updated []map[string]any
				var deleted []string
				for k := range 3 {
					created = append(created, newCustomerRow(fmt.Sprintf("p%dr%dk%d", i, round, k)))
				}
				ids := slices.Sorted(func(yield func(string) bool) {
					for id := range p.local {
						if !yield(id) {
							return
						}
					}
				})
				for k := 0; k < 3 && len(ids) > 0; k++ {
					id := ids[rng.IntN(len(ids))]
					if k == 2 && round == rounds-2 && strings.HasPrefix(id, fmt.Sprintf("p%d", i)) {
						deleted = append(deleted, id)
						continue
					}
					if slices.Contains(deleted, id) || slices.ContainsFunc(updated, func(r map[string]any) bool { return r["id"] == id }) {
						continue
					}
					updated = append(updated, map[string]any{"id": id, "_status": "updated", "_changed": "region",
						"region": fmt.Sprintf("by phone %d in round %d", i, round)})
				}
				if status, m := p.push(t, pushVia, created, updated, deleted); status != 200 {
					errs <- fmt.Sprintf("phone %d round %d push via %s: %d %v", i, round, pushVia.name, status, m)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Fatal(e)
		}
	}
	for i, p := range phones {
		p.pull(t, []*replica{a, b}[i%2])
	}
	server := newPhone(t, b, email, "auditor")
	server.pull(t, b)
	if len(server.local) < len(phones)*rounds*3-len(phones) {
		t.Fatalf("server holds %d customers after %d creates", len(server.local), len(phones)*rounds*3)
	}
	t.Logf("%d customers on the server after %d rounds of 3 phones", len(server.local), rounds)
	for i, p := range phones {
		if got, want := slices.Sorted(mapKeys(p.local)), slices.Sorted(mapKeys(server.local)); !slices.Equal(got, want) {
			t.Fatalf("phone %d holds %d customers, the server %d:\nphone  %v\nserver %v", i, len(got), len(want), got, want)
		}
		for id, rec := range server.local {
			if p.local[id]["region"] != rec["region"] || p.local[id]["name"] != rec["name"] {
				t.Errorf("phone %d, customer %s: region %q, server %q", i, id, p.local[id]["region"], rec["region"])
			}
		}
	}
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// testReplicasPushOnce: the user has a phone registered through each replica;
// a task due in two seconds, created through one of them, reaches each phone
// exactly once although both processes run a reminder worker. It runs on the
// wall clock (two real serve processes), so it checks only that no push comes
// before the due time and none twice; exact instants are notify's tests'.
func testReplicasPushOnce(t *testing.T, a, b *replica, fcm *benchFCM) {
	email := "push@replicas.test"
	token := signup(t, a, "Push Ltd", email)["access_token"].(string)
	for _, dev := range []struct {
		r          *replica
		id, token_ string
	}{{a, "phone-a", "fcm-token-a"}, {b, "phone-b", "fcm-token-b"}} {
		dev.r.must(t, 200, "POST", "/v1/devices", token, map[string]any{"device_id": dev.id, "fcm_token": dev.token_, "platform": "android", "locale": "en"})
	}
	customer := b.must(t, 201, "POST", "/v1/customers", token, map[string]any{"name": "Pushed Co", "kind": "company"})["id"].(string)
	due := time.Now().Add(2 * time.Second).Truncate(time.Second).Add(time.Second)
	task := b.must(t, 201, "POST", "/v1/tasks", token, map[string]any{"customer_id": customer, "title": "Call back", "due_at": due.Format(time.RFC3339)})["id"].(string)

	// Wait until the reminder is recorded sent. From then on no further push
	// of it can happen: a worker that claims it later finds it sent, and a
	// delivery to a device is claimed once, by an insert. So the count
	// below is final, with no sleep to let a doubled push arrive.
	sent := func() bool {
		_, body := a.call(t, "GET", "/v1/tasks/"+task+"/reminders", token, nil)
		data, _ := body["data"].([]any)
		for _, r := range data {
			if r, _ := r.(map[string]any); r["kind"] == "task_due" && r["state"] == "sent" {
				return true
			}
		}
		return false
	}
	deadline := time.Now().Add(60 * time.Second)
	for !sent() && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	n := map[string]int{}
	for _, got := range fcm.until(time.Now()) {
		if got.task != task {
			continue
		}
		n[got.token]++
		if got.wall.Before(due) {
			t.Errorf("push to %s at %s, before its due time %s", got.token, got.wall, due)
		}
	}
	if n["fcm-token-a"] != 1 || n["fcm-token-b"] != 1 || len(n) != 2 {
		t.Fatalf("pushes per device for the task: %v, want one each (reminder sent: %v)\n%s\n%s", n, sent(), a.logs.String(), b.logs.String())
	}
}

// testReplicaKilledMidPush: a phone pushes batch after batch through a; a is
// killed. Every batch a acknowledged is on the server, as b's pull shows; the
// batch in flight, retried through b, is accepted and stored once.
func testReplicaKilledMidPush(t *testing.T, a, b *replica) {
	email := "crash@replicas.test"
	signup(t, b, "Crash Ltd", email)
	p := newPhone(t, b, email, "crash-phone")
	p.pull(t, b)

	var mu sync.Mutex
	var acked []string
	var inFlight []map[string]any
	done := make(chan struct{})
	go func() {
		defer close(done)
		for batch := 0; batch < 500; batch++ {
			rows := make([]map[string]any, 10)
			for k := range rows {
				rows[k] = newCustomerRow(fmt.Sprintf("crash%03d-%02d", batch, k))
			}
			status, _ := p.push(t, a, rows, nil, nil)
			mu.Lock()
			if status != 200 {
				inFlight = rows
				mu.Unlock()
				return
			}
			for _, r := range rows {
				acked = append(acked, r["id"].(string))
			}
			mu.Unlock()
		}
	}()
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 50 {
			break
		}
		select {
		case <-done:
			t.Fatal("the pusher stopped before the kill")
		case <-time.After(10 * time.Millisecond):
		}
	}
	a.kill(t)
	<-done
	if inFlight == nil {
		t.Fatal("the pusher never saw the replica die")
	}

	check := newPhone(t, b, email, "check-phone")
	check.pull(t, b)
	for _, id := range acked {
		if check.local[id] == nil {
			t.Fatalf("customer %s was acknowledged by %s before it died but is not on the server (%d of %d there)", id, a.name, len(check.local), len(acked))
		}
	}
	// The phone never heard back about its last push and retries it, now
	// through the surviving replica: every record is accepted, none doubled.
	status, m := p.push(t, b, inFlight, nil, nil)
	if status != 200 || len(m["accepted"].(map[string]any)["customers"].([]any)) != len(inFlight) {
		t.Fatalf("retried push through %s: %d %v", b.name, status, m)
	}
	for _, row := range inFlight {
		got := b.must(t, 200, "GET", "/v1/customers/"+url.PathEscape(row["id"].(string)), p.token, nil)
		if got["name"] != row["name"] {
			t.Fatalf("retried customer %v", got)
		}
	}
	if n := countCustomers(t, b, p.token); n != len(acked)+len(inFlight) {
		t.Fatalf("%d customers after %d acknowledged and %d retried", n, len(acked), len(inFlight))
	}
}

// countCustomers pages through GET /v1/customers.
func countCustomers(t *testing.T, r *replica, token string) int {
	t.Helper()
	n, after := 0, ""
	for {
		page := r.must(t, 200, "GET", "/v1/customers?limit=200&after="+url.QueryEscape(after), token, nil)
		n += len(page["data"].([]any))
		next, _ := page["next_after"].(string)
		if next == "" {
			return n
		}
		after = next
	}
}

// deleteRedisKeys removes what the replicas kept in the shared Redis.
func deleteRedisKeys(t *testing.T, prefix string) {
	opts, err := app.RedisOptions(os.Getenv("REDIS_URL"))
	if err != nil {
		t.Error(err)
		return
	}
	client := redis.NewUniversalClient(opts)
	defer client.Close()
	if err := testenv.DeleteKeys(context.Background(), client, prefix); err != nil {
		t.Error(err)
	}
}
