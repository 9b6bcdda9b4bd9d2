package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// startRedisCluster starts a three-master Redis Cluster on loopback from the
// machine's redis-server and returns its REDIS_URL (the comma form). A port
// taken by another test process between choosing and binding it fails an
// attempt; it tries three times.
func startRedisCluster(t *testing.T) string {
	t.Helper()
	server, err1 := exec.LookPath("redis-server")
	cli, err2 := exec.LookPath("redis-cli")
	if err1 != nil || err2 != nil {
		t.Fatalf("a Redis Cluster needs redis-server and redis-cli: %v %v", err1, err2)
	}
	var err error
	for range 3 {
		var url string
		if url, err = tryRedisCluster(t, server, cli); err == nil {
			return url
		}
	}
	t.Fatal(err)
	return ""
}

func tryRedisCluster(t *testing.T, server, cli string) (string, error) {
	dir := t.TempDir()
	var addrs []string
	for range 3 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		cmd := exec.Command(server, "--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
			"--cluster-config-file", fmt.Sprintf("nodes-%d.conf", port), "--save", "", "--appendonly", "no", "--dir", dir)
		if err := cmd.Start(); err != nil {
			return "", err
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		addrs = append(addrs, fmt.Sprintf("127.0.0.1:%d", port))
	}
	for _, a := range addrs {
		if !eventually(10*time.Second, func() bool {
			c := redis.NewClient(&redis.Options{Addr: a})
			defer c.Close()
			return c.Ping(context.Background()).Err() == nil
		}) {
			return "", fmt.Errorf("redis %s did not start", a)
		}
	}
	create := exec.Command(cli, append(append([]string{"--cluster", "create"}, addrs...), "--cluster-replicas", "0", "--cluster-yes")...)
	if out, err := create.CombinedOutput(); err != nil {
		return "", fmt.Errorf("redis-cli --cluster create: %v\n%s", err, out)
	}
	ok := eventually(30*time.Second, func() bool {
		for _, a := range addrs {
			c := redis.NewClient(&redis.Options{Addr: a})
			info, err := c.ClusterInfo(context.Background()).Result()
			c.Close()
			if err != nil || !strings.Contains(info, "cluster_state:ok") {
				return false
			}
		}
		return true
	})
	if !ok {
		return "", fmt.Errorf("cluster %v not ok in 30 s", addrs)
	}
	return "redis://" + strings.Join(addrs, ","), nil
}

// eventually polls ok until it holds or within passes.
func eventually(within time.Duration, ok func() bool) bool {
	deadline := time.Now().Add(within)
	for !ok() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
	return true
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	if !eventually(30*time.Second, ok) {
		t.Fatalf("%s: not within 30 s", what)
	}
}

// TestServeOnARedisCluster runs serve on a three-node Redis Cluster and uses
// everything fieldcrm keeps in Redis: customer numbers, sync numbers (two-key
// scripts), the reminder schedule and its claims, sign-in limits and job
// leases. On a Cluster, keys one script touches must share a slot; a missing
// hash tag fails here with CROSSSLOT.
func TestServeOnARedisCluster(t *testing.T) {
	if os.Getenv("REDIS_URL") == "" {
		t.Skip("runs with the real servers (.ci/run's second pass), which installs redis-server")
	}
	fcm := newBenchFCM()
	defer fcm.srv.Close()
	vars := isolatedVars(t, "cluster")
	vars["REDIS_URL"] = startRedisCluster(t)
	vars["FCM_PROJECT_ID"] = "bench"
	vars["FCM_ENDPOINT"] = fcm.srv.URL
	vars["FIELDCRM_LOGIN_MAX_FAILURES"] = "2"
	p := startServe(t, vars)
	defer p.stop(t)
	r := &replica{name: "cluster", base: p.base}

	token := signup(t, r, "Cluster Ltd", "cluster@replicas.test")["access_token"].(string)
	customer := r.must(t, 201, "POST", "/v1/customers", token, map[string]any{"name": "Slot Co", "kind": "company"})
	if customer["number"] == "" {
		t.Fatalf("no customer number: %v", customer)
	}
	ph := newPhone(t, r, "cluster@replicas.test", "cluster-phone")
	ph.pull(t, r)
	if status, m := ph.push(t, r, []map[string]any{newCustomerRow("clusterrow1")}, nil, nil); status != 200 {
		t.Fatalf("push: %d %v", status, m)
	}
	check := newPhone(t, r, "cluster@replicas.test", "cluster-check")
	check.pull(t, r)
	if check.local["clusterrow1"] == nil || check.local[customer["id"].(string)] == nil {
		t.Fatalf("pull on the cluster returned %d customers", len(check.local))
	}

	r.must(t, 200, "POST", "/v1/devices", token, map[string]any{"device_id": "cluster-phone", "fcm_token": "cluster-token", "platform": "ios"})
	due := time.Now().Add(2 * time.Second).Truncate(time.Second).Add(time.Second)
	task := r.must(t, 201, "POST", "/v1/tasks", token, map[string]any{"customer_id": customer["id"], "title": "Call", "due_at": due.Format(time.RFC3339)})["id"]
	waitFor(t, "the reminder's push", func() bool {
		for _, a := range fcm.until(time.Now()) {
			if a.task == task && a.token == "cluster-token" {
				return true
			}
		}
		return false
	})

	for range 2 {
		r.must(t, 401, "POST", "/v1/auth/login", "", map[string]any{"email": "cluster@replicas.test", "password": "not the password", "device_id": "x"})
	}
	r.must(t, 429, "POST", "/v1/auth/login", "", map[string]any{"email": "cluster@replicas.test", "password": replicaPassword, "device_id": "x"})
}
