package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/fieldcrm/fieldcrm/sync/watermelon"
)

// TestGeneratedModelsCompileMigrateAndSync writes the generated models of
// every schema version (`fieldcrm schema`) into sync/watermelon/e2e,
// compiles them with tsc --strict against the real @nozbe/watermelondb
// types, and runs models.test.js there: a phone built for schema version 1
// syncs with a real `fieldcrm serve`, migrates to the current version with
// the generated migrations, and syncs and writes through the generated
// classes. Like TestWatermelonDBClientEndToEnd, it needs Node and `npm ci`
// in that folder (FIELDCRM_E2E=1 makes their absence a failure).
func TestGeneratedModelsCompileMigrateAndSync(t *testing.T) {
	dir, node := nodePackage(t, "../../sync/watermelon/e2e", "node", "typescript")
	for _, sub := range []string{"generated", "compiled"} {
		if err := os.RemoveAll(filepath.Join(dir, sub)); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"schema", "--out", filepath.Join(dir, "generated")}, func(string) string { return "" }, &out, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	args := []string{"node_modules/typescript/bin/tsc", "--strict", "--target", "ES2020", "--module", "commonjs",
		"--moduleResolution", "node", "--experimentalDecorators", "--skipLibCheck", "--rootDir", "generated", "--outDir", "compiled"}
	files, _ := filepath.Glob(filepath.Join(dir, "generated", "v*", "*.ts"))
	for _, f := range files {
		rel, _ := filepath.Rel(dir, f)
		args = append(args, rel)
	}
	tsc := exec.CommandContext(ctx, node, args...)
	tsc.Dir = dir
	if out, err := tsc.CombinedOutput(); err != nil {
		t.Fatalf("tsc --strict on the generated files: %v\n%s", err, out)
	}

	p := startServe(t, isolatedVars(t, "models"))
	defer p.stop(t)
	result := runAgainstServe(ctx, t, p, dir, []string{"FIELDCRM_SCHEMA_VERSION=" + strconv.Itoa(watermelon.SchemaVersion)}, node, "models.test.js")
	t.Logf("%s", lastLine(result))
}
