package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
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
// push token registration and sign-out, and the guide's glue.
//
// The territory is FIELDCRM_CLIENT_TERRITORY customers (3,000 unless set,
// in pages of 500), to keep CI fast: seeding it is most of the test's time
// (pushed through the server, about 70 s under -race on the 2-core machine).
// It runs on the embedded engines only: what it tests is the client, and
// the storage under the server is TestWatermelonDBClientEndToEnd's concern
// in every pass. The server's JWT secret is given to
// the script, which signs an expired copy of a real access token with it.
// It needs Node and `npm ci` in sync/client-js; .ci/run does both and sets
// FIELDCRM_E2E=1, which turns a missing prerequisite into a failure.
func TestSyncClientPackage(t *testing.T) {
	dir, _ := filepath.Abs("../../sync/client-js")
	npm, err := exec.LookPath("npm")
	_, modErr := os.Stat(filepath.Join(dir, "node_modules", "@nozbe", "watermelondb"))
	if err != nil || modErr != nil {
		if os.Getenv("FIELDCRM_E2E") == "1" {
			t.Fatalf("FIELDCRM_E2E=1 but npm (%v) or the npm packages (%v) are missing", err, modErr)
		}
		t.Skip("needs npm and `npm ci` in sync/client-js (set FIELDCRM_E2E=1 to require it)")
	}
	if os.Getenv("FERRETDB_POSTGRESQL_URL") != "" || os.Getenv("MONGODB_URI") != "" {
		t.Skip("the client's tests run once, on the embedded engines")
	}
	territory := os.Getenv("FIELDCRM_CLIENT_TERRITORY")
	if territory == "" {
		territory = "3000"
	}
	const pageSize, secret = "500", "sync-client-test-secret-of-more-than-32-bytes"
	vars := isolatedVars(t, "client")
	vars["FIELDCRM_SYNC_PAGE_SIZE"] = pageSize
	vars["FIELDCRM_JWT_SECRET"] = secret
	p := startServe(t, vars)
	defer p.stop(t)

	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "test", "--silent")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "FIELDCRM_URL="+p.base, "FIELDCRM_SYNC_PAGE_SIZE="+pageSize,
		"FIELDCRM_JWT_SECRET="+secret, "FIELDCRM_CLIENT_TERRITORY="+territory)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("@fieldcrm/watermelondb tests failed: %v\n%s\nserver log:\n%s", err, out, lastLines(p.logs.String(), 60))
	}
	t.Logf("%s", out)
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
