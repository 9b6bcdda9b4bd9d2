package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fieldcrm/fieldcrm/sync/watermelon"
)

func TestSchemaCommandWritesEveryVersionsFiles(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	if err := run(context.Background(), []string{"schema", "--out", dir}, func(string) string { return "" }, &out, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for v := 1; v <= watermelon.SchemaVersion; v++ {
		want, err := watermelon.CurrentSchema().Generate(v)
		if err != nil {
			t.Fatal(err)
		}
		for name, text := range want {
			got, err := os.ReadFile(filepath.Join(dir, "v"+string(rune('0'+v)), name))
			if err != nil || string(got) != text {
				t.Errorf("v%d/%s: %v, or not what Generate gives", v, name, err)
			}
		}
	}
	one := t.TempDir()
	if err := run(context.Background(), []string{"schema", "--out", one, "--version", "2"}, func(string) string { return "" }, &out, &out); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(one, "schema.ts")); err != nil || !strings.Contains(string(got), "schemaVersion = 2\n") {
		t.Fatalf("--version 2 wrote %.80s (%v)", got, err)
	}
	var usage usageError
	for _, args := range [][]string{{"schema"}, {"schema", "--out", one, "--version", "9"}} {
		if err := run(context.Background(), args, func(string) string { return "" }, &out, &out); !errors.As(err, &usage) {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
}
