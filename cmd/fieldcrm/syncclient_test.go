package main

import (
	"context"
	"io"
	"maps"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"
)

// TestSyncClientPackage runs the tests of @fieldcrm/watermelondb
// (sync/client-js: `npm test` compiles the package and its guide's example,
// then test/client.test.js runs the real WatermelonDB with LokiJS in Node
// through the package) against `fieldcrm serve`: a first sync of a large
// territory in pages with progress, a first sync killed half-way and
// resumed, an access token expiring mid-sync, a revoked session, a rejected
// record, conflicts converging in one sync(), a 410 with unpushed edits,
// push token registration and sign-out, the guide's glue, and the package's
// CLI writing the generated models of the running server.
//
// The territory is FIELDCRM_CLIENT_TERRITORY customers (3,000 unless set,
// in pages of 500), seeded through the store; .ci/run sets 20,000.
// It runs on the embedded engines only, without the race detector (which
// made seeding 3,000 take 78 s): what it tests is the client, and the
// server under it is TestWatermelonDBClientEndToEnd's concern in every
// pass; .ci/run runs it in its step without -race. The server's JWT secret is given to
// the script, which signs an expired copy of a real access token with it.
// It needs Node and `npm ci` in sync/client-js; .ci/run does both and sets
// FIELDCRM_E2E=1, which turns a missing prerequisite into a failure.
func TestSyncClientPackage(t *testing.T) {
	dir, npm := nodePackage(t, "../../sync/client-js", "npm", "@nozbe/watermelondb")
	if os.Getenv("FERRETDB_POSTGRESQL_URL") != "" || os.Getenv("MONGODB_URI") != "" {
		t.Skip("the client's tests run once, on the embedded engines")
	}
	if raceDetector {
		t.Skip("the client's tests run without -race (.ci/run's step without it)")
	}
	territory := os.Getenv("FIELDCRM_CLIENT_TERRITORY")
	if territory == "" {
		territory = "3000"
	}
	n, err := strconv.Atoi(territory)
	if err != nil || n < 1 {
		t.Fatalf("FIELDCRM_CLIENT_TERRITORY=%q: want a number of customers", territory)
	}
	const pageSize, secret = "500", "sync-client-test-secret-of-more-than-32-bytes"
	vars := isolatedVars(t, "client")
	vars["FIELDCRM_SYNC_PAGE_SIZE"] = pageSize
	vars["FIELDCRM_JWT_SECRET"] = secret
	// The package's CLI must write what `fieldcrm schema` writes.
	schemaDir := t.TempDir()
	if err := schemaCommand(context.Background(), []string{"--out", schemaDir}, nil, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	rep := seededTerritory(t, vars, n)
	p := startServe(t, vars)
	defer p.stop(t)

	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	out := runAgainstServe(ctx, t, p, dir, []string{"FIELDCRM_SYNC_PAGE_SIZE=" + pageSize,
		"FIELDCRM_JWT_SECRET=" + secret, "FIELDCRM_CLIENT_TERRITORY=" + territory,
		"FIELDCRM_CLIENT_BIG_REP=" + rep.email, "FIELDCRM_CLIENT_BIG_REP_PASSWORD=" + benchPassword, "FIELDCRM_SCHEMA_DIR=" + schemaDir},
		npm, "test", "--silent")
	t.Logf("%s", out)
}

// seededTerritory makes a rep with n customers, written straight through
// the store as `fieldcrm bench sync` seeds them (pushing them through the
// server took over three minutes under -race for 3,000): serve makes the
// tenant, is stopped, the application seeds on the same data, and the
// caller starts serve again.
func seededTerritory(t *testing.T, vars map[string]string, n int) benchRep {
	t.Helper()
	p := startServe(t, vars)
	c := &benchClient{base: p.base, http: &http.Client{Timeout: time.Minute}}
	rep, err := c.territory()
	p.stop(t)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"FIELDCRM_PASSWORD_MEMORY_KIB": "64", "FIELDCRM_PASSWORD_TIME": "1",
		"FERRETDB_POSTGRESQL_URL": os.Getenv("FERRETDB_POSTGRESQL_URL"), "REDIS_URL": os.Getenv("REDIS_URL")}
	maps.Copy(env, vars)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	a, err := startCommandApp(ctx, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = seed(ctx, a, rep, n, 0)
	a.Close(ctx)
	if err != nil {
		t.Fatalf("seed %d customers: %v", n, err)
	}
	t.Logf("seeded %d customers in %v", n, time.Since(start).Round(time.Millisecond))
	return rep
}

// lastLines is the end of a long log: n lines at most.
func lastLines(s string, n int) string {
	end := len(s)
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '\n' && i < end-1 {
			n--
			if n == 0 {
				return s[i+1:]
			}
		}
	}
	return s
}
