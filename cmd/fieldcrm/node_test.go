package main

import (
	"os"
	"os/exec"
	"path/filepath"
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
