package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestGeneratedOpenAPIClient generates a TypeScript client from the OpenAPI
// document a real `fieldcrm serve` publishes (openapi-typescript), type-checks
// api/testdata/openapi-client/smoke.ts against it with tsc --strict (among
// its checks: the enumerations and required fields reach the types), and
// runs it against that server with openapi-fetch: sign up, create customers,
// list with a filter, page with after, an If-Match edit, pull. It needs Node
// and `npm ci` in that folder; .ci/run does both and sets FIELDCRM_E2E=1,
// which turns a missing prerequisite into a failure instead of a skip.
// docs/api.md shows the same commands.
func TestGeneratedOpenAPIClient(t *testing.T) {
	dir, npm := nodePackage(t, "../../api/testdata/openapi-client", "npm", "openapi-typescript")
	p := startServe(t, isolatedVars(t, "openapiclient"))
	defer p.stop(t)

	// The client is generated and built in a folder of the test's own,
	// beside the packages installed in dir.
	work := t.TempDir()
	for _, name := range []string{"smoke.ts", "tsconfig.json", "package.json"} {
		raw, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(work, name), raw, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(dir, "node_modules"), filepath.Join(work, "node_modules")); err != nil {
		t.Fatal(err)
	}
	res, err := http.Get(p.base + "/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("GET /v1/openapi.json: %d, %v", res.StatusCode, err)
	}
	if err := os.WriteFile(filepath.Join(work, "openapi.json"), doc, 0o644); err != nil {
		t.Fatal(err)
	}

	// The steps are the package's scripts, which docs/api.md shows.
	guide, err := os.ReadFile("../../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for _, script := range []string{"generate", "check", "smoke"} {
		if !strings.Contains(string(guide), "npm run "+script) {
			t.Errorf("docs/api.md does not show npm run %s", script)
		}
		start := time.Now()
		out := runAgainstServe(ctx, t, p, work, nil, npm, "run", "--silent", script)
		t.Logf("npm run %s (%s): %s", script, time.Since(start).Round(time.Millisecond), lastLine(out))
	}
}
