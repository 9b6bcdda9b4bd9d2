package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var restartSeed = flag.Uint64("restart-seed", 0, "seed of TestDefaultDeploymentKeepsSyncAcrossRestartsAndCrashes (0: from the clock)")

// TestDefaultDeploymentKeepsSyncAcrossRestartsAndCrashes runs the default
// deployment (embedded FerretDB on SQLite, in-process Redis that keeps
// nothing) as a process of its own, and stops it in the middle of pushes,
// cleanly or with kill -9, several rounds, seeded. After each restart: the
// phone's cursor is still valid (no 410 or 422, no reset): its first push
// after the restart, sent with that cursor before any pull (the push in
// flight, retried, and an edit), is accepted and applied, and its next pull
// is complete; every acknowledged write is there once, and customer numbers
// stay unique.
//
// Seeded: a failure prints the seed; rerun it with
// go test ./cmd/fieldcrm -run TestDefaultDeploymentKeepsSync -args -restart-seed=N
// (the stop lands after the same number of pushed customers, not at the
// same instruction).
func TestDefaultDeploymentKeepsSyncAcrossRestartsAndCrashes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the server several times")
	}
	seed := *restartSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (rerun: -args -restart-seed=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	env := defaultDeploymentEnv()
	r := &replica{name: "default", dataDir: t.TempDir()}
	start := func() { r.start(t, env) }
	start()
	t.Cleanup(func() { r.kill(t) })
	email := "restart@default.test"
	office := signup(t, r, "Restart Ltd", email)["access_token"].(string)
	p := newPhone(t, r, email, "restart-phone")
	p.pull(t, r)
	// A customer the office edits each round and the phone after the restart.
	const edited = "restart-edited"
	if status, m := p.push(t, r, []map[string]any{newCustomerRow(edited)}, nil, nil); status != 200 {
		t.Fatalf("push: %d %v", status, m)
	}

	acked := map[string]bool{edited: true}
	for round := range 4 {
		// The office changes the title, and the phone syncs that before the
		// stop, then syncs again (nothing new): its edit of the title after
		// the restart meets no change it has not seen, so it is no conflict,
		// unless the server took its cursor for one it cannot vouch for (a
		// blind push). One pull would not do: a push is judged from where
		// the phone stood before its last pull (WatermelonDB pushes edits
		// made before that pull), which is before the office's title.
		r.must(t, 200, "PATCH", "/v1/customers/"+edited, office, map[string]any{"title": fmt.Sprintf("office %d", round)})
		p.pull(t, r)
		p.pull(t, r)
		var mu sync.Mutex
		var inFlight []map[string]any
		stopAt := 20 + rng.IntN(60)
		pushed := 0
		done := make(chan struct{})
		go func() {
			defer close(done)
			for batch := 0; batch < 1000; batch++ {
				rows := make([]map[string]any, 5)
				for k := range rows {
					rows[k] = newCustomerRow(fmt.Sprintf("r%d-%03d-%d", round, batch, k))
				}
				status, _ := p.push(t, r, rows, nil, nil)
				mu.Lock()
				if status != 200 {
					inFlight = rows
					mu.Unlock()
					return
				}
				for _, row := range rows {
					acked[row["id"].(string)] = true
				}
				pushed += len(rows)
				mu.Unlock()
			}
		}()
		for {
			mu.Lock()
			n := pushed
			mu.Unlock()
			if n >= stopAt {
				break
			}
			select {
			case <-done:
				t.Fatal("the pusher stopped before the server did")
			case <-time.After(5 * time.Millisecond):
			}
		}
		crash := round%2 == 0
		if crash {
			r.kill(t)
		} else if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		<-done
		if !crash {
			if err := <-r.exited; err != nil {
				t.Fatalf("round %d: serve did not stop cleanly: %v\n%s", round, err, r.logs.String())
			}
		}
		start()

		// The cursor from before the stop is still good: the phone's first
		// push after the restart, before any pull, is accepted whole and
		// applied as an ordinary push (the push in flight, retried, and its
		// edit of the title, no conflict), and what it pulls with that
		// cursor completes what it has.
		title := fmt.Sprintf("phone %d", round)
		edits := []map[string]any{{"id": edited, "_status": "updated", "_changed": "title", "title": title}}
		status, m := p.push(t, r, inFlight, edits, nil)
		accepted, _ := m["accepted"].(map[string]any)
		conflicted, _ := m["conflicted"].(map[string]any)
		ids, _ := accepted["customers"].([]any)
		if c, _ := conflicted["customers"].([]any); status != 200 || len(ids) != len(inFlight)+len(edits) || len(c) > 0 {
			t.Fatalf("round %d: first push after the restart, with the cursor from before: %d %v", round, status, m)
		}
		for _, row := range inFlight {
			acked[row["id"].(string)] = true
		}
		p.pull(t, r)
		if p.local[edited]["title"] != title {
			t.Fatalf("round %d: the edit pushed with the cursor from before the restart: title %v", round, p.local[edited]["title"])
		}
		fresh := newPhone(t, r, email, fmt.Sprintf("check-%d", round))
		fresh.pull(t, r)
		numbers := map[string]string{}
		for id := range acked {
			rec := fresh.local[id]
			if rec == nil {
				t.Fatalf("round %d (crash %v): acknowledged customer %s is missing (%d of %d on the server)", round, crash, id, len(fresh.local), len(acked))
			}
			if p.local[id] == nil || p.local[id]["number"] != rec["number"] {
				t.Fatalf("round %d: the phone's pull after the restart is incomplete: %s is %v there, %v on the server", round, id, p.local[id], rec)
			}
			if other, taken := numbers[rec["number"].(string)]; taken {
				t.Fatalf("round %d: customers %s and %s share the number %v", round, id, other, rec["number"])
			}
			numbers[rec["number"].(string)] = id
		}
		if len(fresh.local) != len(acked) {
			t.Fatalf("round %d: %d customers on the server, %d acknowledged", round, len(fresh.local), len(acked))
		}
	}
}

// defaultDeploymentEnv is the environment of a serve process on the default
// deployment (embedded FerretDB on SQLite, in-process Redis), whatever the
// test run's own environment names: fieldcrm's variables are left out.
func defaultDeploymentEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); !strings.HasPrefix(k, "FIELDCRM_") && !strings.HasPrefix(k, "MONGODB_") &&
			!strings.HasPrefix(k, "FCM_") && k != "REDIS_URL" && k != "FERRETDB_POSTGRESQL_URL" {
			env = append(env, kv)
		}
	}
	return append(env, replicaChildVar+"=1", "FIELDCRM_PASSWORD_MEMORY_KIB=64", "FIELDCRM_PASSWORD_TIME=1")
}

// start launches r with env and waits until it is ready.
func (r *replica) start(t *testing.T, env []string) {
	t.Helper()
	r.launch(t, env)
	r.waitReady(t, env)
}

// waitReady waits until the launched r answers /readyz, launching it again on
// another port when the one it was given was taken meanwhile.
func (r *replica) waitReady(t *testing.T, env []string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for relaunches := 0; !r.ready(); {
		select {
		case err := <-r.exited:
			// The free port launch found can be taken by another process
			// before serve binds it: try another.
			if strings.Contains(r.logs.String(), "address already in use") && relaunches < 3 {
				relaunches++
				r.launch(t, env)
				continue
			}
			t.Fatalf("%s exited during start-up: %v\n%s", r.name, err, r.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready in 90 s\n%s", r.name, r.logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (r *replica) stop(t *testing.T) {
	t.Helper()
	if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-r.exited:
		if err != nil {
			t.Fatalf("%s did not stop cleanly: %v\n%s", r.name, err, r.logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not stop in 30 s", r.name)
	}
}
