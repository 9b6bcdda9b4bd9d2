package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const modulePath = "github.com/fieldcrm/fieldcrm"

// TestImportsPointDown compares the import graph with the folder map of
// docs/architecture.md: every package of the module is in the map, and each
// imports (in its non-test code) only packages of a lower layer.
func TestImportsPointDown(t *testing.T) {
	layers, err := documentedLayers("../../docs/architecture.md")
	if err != nil {
		t.Fatal(err)
	}
	pkgs, err := modulePackages("../..")
	if err != nil {
		t.Fatal(err)
	}
	if problems := layeringProblems(layers, pkgs); len(problems) > 0 {
		t.Fatalf("the code and docs/architecture.md disagree:\n%s", strings.Join(problems, "\n"))
	}
}

// TestLayeringProblemsCatchesWrongArrows shows the check fails where it should.
func TestLayeringProblemsCatchesWrongArrows(t *testing.T) {
	layers := map[string]int{"models": 0, "internal/store": 2, "api": 5}
	pkgs := map[string][]string{
		"models":         {"internal/store"}, // up
		"internal/store": {"models"},
		"api":            {"api"}, // an import of itself cannot happen; a sideways one can
		"notify":         {"models"},
	}
	got := layeringProblems(layers, pkgs)
	want := []string{
		"api (layer 5) imports api (layer 5): an arrow must point to a lower layer",
		"models (layer 0) imports internal/store (layer 2): an arrow must point to a lower layer",
		"notify is not in the folder map",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// layeringProblems lists the packages missing from the map and the imports
// that do not point to a lower layer, in a stable order.
func layeringProblems(layers map[string]int, imports map[string][]string) []string {
	var problems []string
	for _, pkg := range slices.Sorted(maps.Keys(imports)) {
		from, ok := layers[pkg]
		if !ok {
			problems = append(problems, pkg+" is not in the folder map")
			continue
		}
		for _, dep := range imports[pkg] {
			to, ok := layers[dep]
			if !ok {
				continue // reported as a package of its own
			}
			if to >= from {
				problems = append(problems, pkg+" (layer "+strconv.Itoa(from)+") imports "+dep+
					" (layer "+strconv.Itoa(to)+"): an arrow must point to a lower layer")
			}
		}
	}
	return problems
}

// documentedLayers reads the table of docs/architecture.md: rows of
// | `folder/` | layer | what |; a row without a layer (deploy, docs) holds no Go package.
func documentedLayers(path string) (map[string]int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	row := regexp.MustCompile("^\\| `([a-z/]+?)/?` \\| ([0-9]*) \\|")
	layers := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := row.FindStringSubmatch(sc.Text())
		if m == nil || m[2] == "" {
			continue
		}
		n, _ := strconv.Atoi(m[2])
		layers[m[1]] = n
	}
	if len(layers) == 0 {
		return nil, errors.New(path + " has no folder map")
	}
	return layers, sc.Err()
}

// modulePackages returns each package of the module (path relative to the
// module) with the module's packages its non-test files import.
func modulePackages(dir string) (map[string][]string, error) {
	cmd := exec.Command("go", "list", "-json", "./...")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return nil, err
	}
	pkgs := map[string][]string{}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p struct {
			ImportPath string
			GoFiles    []string
			Imports    []string
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, err
		}
		if len(p.GoFiles) == 0 {
			continue // tests only (deploy/)
		}
		var own []string
		for _, imp := range p.Imports {
			if rel, ok := strings.CutPrefix(imp, modulePath+"/"); ok {
				own = append(own, rel)
			}
		}
		pkgs[strings.TrimPrefix(p.ImportPath, modulePath+"/")] = own
	}
	return pkgs, nil
}
