package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/fieldcrm/fieldcrm/sync/watermelon"
)

// schemaCommand writes a WatermelonDB app's data layer (schema.ts,
// migrations.ts, types.ts, models.ts) generated from the sync schema: with
// --version N, that version's into DIR; without, every version's, each into
// DIR/v<N>. It needs no server and no data.
func schemaCommand(_ context.Context, args []string, _ func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("schema", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "the directory to write into (created if missing)")
	only := fs.Int("version", 0, fmt.Sprintf("the schema version to write (1 to %d; default every one, each in DIR/v<N>)", watermelon.SchemaVersion))
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return usageError{"schema: --out DIR is required"}
	}
	if *only != 0 && (*only < 1 || *only > watermelon.SchemaVersion) {
		return usageError{fmt.Sprintf("schema: --version must be from 1 to %d", watermelon.SchemaVersion)}
	}
	s := watermelon.CurrentSchema()
	write := func(version int, dir string) error {
		files, err := s.Generate(version)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("schema: %w", err)
		}
		names := make([]string, 0, len(files))
		for name := range files {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			path := filepath.Join(dir, name)
			if err := os.WriteFile(path, []byte(files[name]), 0o644); err != nil {
				return fmt.Errorf("schema: %w", err)
			}
			fmt.Fprintf(stdout, "wrote %s (schema version %d)\n", path, version)
		}
		return nil
	}
	if *only != 0 {
		return write(*only, *out)
	}
	for v := 1; v <= s.Version; v++ {
		if err := write(v, filepath.Join(*out, fmt.Sprintf("v%d", v))); err != nil {
			return err
		}
	}
	return nil
}
