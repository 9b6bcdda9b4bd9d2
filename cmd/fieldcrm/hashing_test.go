package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// deployMemoryLimit is the smallest memory limit the deploy files give a
// replica (deploy/compose.yaml; deploy/k8s/deployment.yaml gives 768Mi).
const deployMemoryLimit = 512 << 20

// TestBurstOfSignInsAndSignUpsStaysUnderTheDeployMemoryLimit runs serve with
// the shipped password settings (argon2id at 19 MiB a hash, the automatic
// limit on concurrent hashes) and sends it, at once, the bursts that took an
// unbounded server past the deploy files' limits: 64 sign-ups and 32 failed
// sign-ins. The process's peak resident memory stays under the smallest
// limit; every answer is a success, a 401 or a 429, never a 500. GOMAXPROCS
// is set high so that the memory budget, not this machine's CPU count, is
// what bounds the hashes. The race detector multiplies a process's memory,
// so .ci/run runs this test once more without it.
func TestBurstOfSignInsAndSignUpsStaysUnderTheDeployMemoryLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("hashes a hundred passwords at the shipped cost")
	}
	if raceDetector {
		t.Skip("the race detector's memory would be measured too; .ci/run runs this test without -race")
	}
	var env []string
	for _, kv := range defaultDeploymentEnv() {
		if !strings.HasPrefix(kv, "FIELDCRM_PASSWORD_") && !strings.HasPrefix(kv, "GOMAXPROCS=") && !strings.HasPrefix(kv, "GOMEMLIMIT=") {
			env = append(env, kv)
		}
	}
	// GOMEMLIMIT as serve sets it in the deploy files' smallest container
	// (90% of 512 MiB), whatever limit this machine's cgroup has.
	env = append(env, "GOMAXPROCS=16", "GOMEMLIMIT=460MiB", "FIELDCRM_SIGNUP_MAX_PER_ADDRESS=1000")
	r := &replica{name: "hashing"}
	r.start(t, env)
	t.Cleanup(func() { r.kill(t) })
	idle := peakResident(t, r.cmd.Process.Pid)

	const signups, logins = 64, 32
	statuses := make([]int, signups+logins)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if i < signups {
				statuses[i], _ = r.call(t, "POST", "/v1/auth/signup", "", map[string]any{
					"company_name": fmt.Sprint("Burst ", i), "name": "Admin", "email": fmt.Sprintf("admin%d@burst.test", i), "password": replicaPassword})
				return
			}
			statuses[i], _ = r.call(t, "POST", "/v1/auth/login", "", map[string]any{
				"email": fmt.Sprintf("guess%d@burst.test", i), "password": "wrong password!", "device_id": "d"})
		}()
	}
	close(start)
	wg.Wait()

	count := map[int]int{}
	for i, s := range statuses {
		count[s]++
		want := map[int]bool{201: i < signups, 401: i >= signups, 429: true}
		if !want[s] {
			t.Errorf("request %d of the burst answered %d", i, s)
		}
	}
	if count[201] == 0 {
		t.Errorf("no sign-up of the burst succeeded: %v", count)
	}
	peak := peakResident(t, r.cmd.Process.Pid)
	t.Logf("answers %v; peak resident memory %d MiB (%d MiB idle)", count, peak>>20, idle>>20)
	if peak >= deployMemoryLimit {
		t.Fatalf("peak resident memory %d MiB, over the deploy files' limit of %d MiB", peak>>20, deployMemoryLimit>>20)
	}
}

// peakResident returns the most memory process pid has had resident (VmHWM).
func peakResident(t *testing.T, pid int) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc to read the peak memory from: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kib, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("VmHWM %q: %v", rest, err)
			}
			return kib << 10
		}
	}
	t.Fatalf("no VmHWM in /proc/%d/status", pid)
	return 0
}
