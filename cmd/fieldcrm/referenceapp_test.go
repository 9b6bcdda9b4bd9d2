package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/fieldcrm/fieldcrm/sync/watermelon"
)

// referenceApp is the reference app's folder, relative to this package.
const referenceApp = "../../sync/reference-app"

// TestReferenceAppGeneratedFilesAreCurrent holds the reference app's
// generated data layer (sync/reference-app/src/generated) to what
// `fieldcrm schema --out src/generated --version <current>` writes now: a
// change of the sync schema fails here until the files are written again.
func TestReferenceAppGeneratedFilesAreCurrent(t *testing.T) {
	want := t.TempDir()
	var out bytes.Buffer
	args := []string{"schema", "--out", want, "--version", strconv.Itoa(watermelon.SchemaVersion)}
	if err := run(context.Background(), args, func(string) string { return "" }, &out, &out); err != nil {
		t.Fatalf("fieldcrm schema: %v\n%s", err, out.String())
	}
	committed := filepath.Join(referenceApp, "src", "generated")
	names := func(dir string) []string {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var list []string
		for _, e := range entries {
			list = append(list, e.Name())
		}
		return list
	}
	if got, exp := names(committed), names(want); !slices.Equal(got, exp) {
		t.Fatalf("%s holds %v, the command writes %v", committed, got, exp)
	}
	for _, name := range names(want) {
		exp, err := os.ReadFile(filepath.Join(want, name))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(committed, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, exp) {
			t.Errorf("%s/%s is stale: run `go run ./cmd/fieldcrm schema --out sync/reference-app/src/generated --version %d`", committed, name, watermelon.SchemaVersion)
		}
	}
}

// TestReferenceAppTypeChecks type-checks the whole reference app (App.tsx,
// the screens, the data layer, the generated models) with tsc --strict
// against the real React Native, React and WatermelonDB types.
func TestReferenceAppTypeChecks(t *testing.T) {
	dir, node := nodePackage(t, referenceApp, "node", "@fieldcrm/watermelondb")
	if os.Getenv("FERRETDB_POSTGRESQL_URL") != "" || os.Getenv("MONGODB_URI") != "" {
		t.Skip("the reference app is type-checked once, in the pass on the embedded engines")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tsc := exec.CommandContext(ctx, node, "node_modules/typescript/bin/tsc", "--noEmit", "-p", "tsconfig.json")
	tsc.Dir = dir
	if out, err := tsc.CombinedOutput(); err != nil {
		t.Fatalf("tsc --noEmit -p tsconfig.json: %v\n%s", err, out)
	}
}

// TestReferenceAppDataLayer runs the reference app's data layer
// (sync/reference-app/src/data, compiled with its test by tsc into a
// temporary folder) in Node against `fieldcrm serve`, on WatermelonDB with
// LokiJS: sign-in, a first sync in pages with progress, the customer list
// and search, a timeline, a visit with a check-in and a follow-up synced
// and read back over REST, and a refused visit in the rejected list until
// it is fixed (test/data.test.ts). It needs Node and `npm ci` in the app's
// folder; .ci/run does both and sets FIELDCRM_E2E=1. It runs on the
// embedded engines only: what it tests is the app's code.
func TestReferenceAppDataLayer(t *testing.T) {
	dir, node := nodePackage(t, referenceApp, "node", "@fieldcrm/watermelondb")
	if os.Getenv("FERRETDB_POSTGRESQL_URL") != "" || os.Getenv("MONGODB_URI") != "" {
		t.Skip("the reference app's test runs once, on the embedded engines")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	build := t.TempDir()
	tsc := exec.CommandContext(ctx, node, "node_modules/typescript/bin/tsc", "-p", "tsconfig.test.json", "--outDir", build)
	tsc.Dir = dir
	if out, err := tsc.CombinedOutput(); err != nil {
		t.Fatalf("tsc -p tsconfig.test.json: %v\n%s", err, out)
	}

	const pageSize = "10"
	vars := isolatedVars(t, "refapp")
	vars["FIELDCRM_SYNC_PAGE_SIZE"] = pageSize
	p := startServe(t, vars)
	defer p.stop(t)

	// The compiled files sit outside the app's folder: they find its
	// packages through NODE_PATH.
	out := runAgainstServe(ctx, t, p, dir, []string{"FIELDCRM_SYNC_PAGE_SIZE=" + pageSize, "NODE_PATH=" + filepath.Join(dir, "node_modules")},
		node, filepath.Join(build, "test", "data.test.js"))
	t.Logf("%s", out)
}
