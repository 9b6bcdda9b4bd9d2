package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// nodePackage returns the absolute path of folder (relative to this
// package) and the path of the program tool ("node" or "npm") for a test
// that runs Node code there, once `npm ci` has installed module in it. A
// missing prerequisite skips the test, or fails it under FIELDCRM_E2E=1,
// which .ci/run sets after installing every such folder's packages.
func nodePackage(t *testing.T, folder, tool, module string) (dir, program string) {
	t.Helper()
	dir, err := filepath.Abs(folder)
	if err != nil {
		t.Fatal(err)
	}
	program, err = exec.LookPath(tool)
	_, modErr := os.Stat(filepath.Join(dir, "node_modules", filepath.FromSlash(module)))
	if err != nil || modErr != nil {
		if os.Getenv("FIELDCRM_E2E") == "1" {
			t.Fatalf("FIELDCRM_E2E=1 but %s (%v) or the npm packages of %s (%v) are missing", tool, err, folder, modErr)
		}
		t.Skipf("needs %s and `npm ci` in %s (set FIELDCRM_E2E=1 to require it)", tool, folder)
	}
	return dir, program
}

// runAgainstServe runs program with args in dir, its environment naming p's
// address in FIELDCRM_URL, with env added, and returns what it printed. A
// failure ends the test with that output and the end of the server's log.
func runAgainstServe(ctx context.Context, t *testing.T, p *serveProcess, dir string, env []string, program string, args ...string) []byte {
	t.Helper()
	cmd := exec.CommandContext(ctx, program, args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "FIELDCRM_URL="+p.base), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s failed: %v\n%s\nserver log:\n%s", filepath.Base(program), strings.Join(args, " "), err, out, lastLines(p.logs.String(), 100))
	}
	return out
}
