package store_test

import (
	"bufio"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// storagePackage is where storage types live: this package and the ones
// under it. Everything else takes and returns models types (or its own).
const storagePackage = "internal/store"

// buildsStorage are the packages (with the ones under them) whose job is to
// make the storage and hand it to everyone else, so their exported API names
// it. Main packages are skipped as well: nothing imports them.
var buildsStorage = map[string]string{
	"internal/app":     "the one constructor of the application opens the store",
	"internal/testenv": "test servers give each test a store",
}

// TestNoStorageTypeOutsideStorage fails when a package outside storage names
// a storage type in its API: an exported function, method, variable, struct
// field or type, or any interface it declares (the contracts consumers hold
// storage to must be in their own words, exported or not).
func TestNoStorageTypeOutsideStorage(t *testing.T) {
	root, module := moduleRoot(t)
	var leaks []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		name := d.Name()
		if p != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" || name == "vendor" || name == "node_modules") {
			return filepath.SkipDir
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if rel == storagePackage || strings.HasPrefix(rel, storagePackage+"/") {
			return filepath.SkipDir
		}
		for builder := range buildsStorage {
			if rel == builder || strings.HasPrefix(rel, builder+"/") {
				return nil
			}
		}
		found, err := storageLeaksInDir(p, module)
		if err != nil {
			return err
		}
		for _, l := range found {
			leaks = append(leaks, rel+": "+l)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range leaks {
		t.Error(l)
	}
}

// TestStorageLeakCheckFindsEachKindOfLeak shows the check above can fail: a
// storage type in each place it looks is found, and the same type in a
// function body or an unexported field is not.
func TestStorageLeakCheckFindsEachKindOfLeak(t *testing.T) {
	const module = "example.com/m"
	cases := []struct {
		name string
		src  string
		want []string
	}{
		{"exported function", `func Open(c st.Config) error { return nil }`, []string{"func Open"}},
		{"exported function result", `func Open() (*st.Store, error) { return nil, nil }`, []string{"func Open"}},
		{"exported method", `type S struct{}
func (S) Audit() []st.AuditEntry { return nil }`, []string{"method S.Audit"}},
		{"exported field", `type Options struct{ Store *st.Store }`, []string{"type Options"}},
		{"embedded field", `type Wrapped struct{ st.Store }`, []string{"type Wrapped"}},
		{"exported interface", `type Finder interface{ Find(q st.Query) error }`, []string{"type Finder"}},
		{"unexported interface", `type finder interface{ Find(q st.Query) error }`, []string{"type finder"}},
		{"type alias", `type Entry = st.AuditEntry`, []string{"type Entry"}},
		{"map and slice of it", `type Index map[string][]st.Cond`, []string{"type Index"}},
		{"exported variable", `var Default st.Config`, []string{"var Default"}},
		{"exported variable of a literal", `var Default = &st.Config{}`, []string{"var Default"}},
		{"generic constraint", `func Each[T st.Query](t T) {}`, []string{"func Each"}},
		{"dot import", `import . "example.com/m/internal/store"
var x = 1`, []string{"dot import"}},

		{"body only", `func Count() int { var q st.Query; _ = q; return 0 }`, nil},
		{"unexported field", `type Service struct{ store *st.Store }`, nil},
		{"unexported function", `func open(c st.Config) {}`, nil},
		{"method of unexported type", `type s struct{}
func (s) Audit() []st.AuditEntry { return nil }`, nil},
		{"a collection name", `var Coll = st.Customers`, nil},
		{"another package", `import other "example.com/m/internal/storeroom"
type Options struct{ Room other.Room }`, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := "package p\n"
			if !strings.Contains(c.src, "import") {
				src += `import st "example.com/m/internal/store/sub"` + "\n"
			}
			src += c.src + "\n"
			f, err := parser.ParseFile(token.NewFileSet(), "p.go", src, parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, l := range storageLeaks(f, module) {
				got = append(got, strings.SplitN(l, " names ", 2)[0])
			}
			if !slices.Equal(got, c.want) {
				t.Fatalf("leaks %q, want %q", got, c.want)
			}
		})
	}
}

// moduleRoot finds the directory of go.mod above the test and the module path.
func moduleRoot(t *testing.T) (dir, module string) {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		f, err := os.Open(filepath.Join(dir, "go.mod"))
		if err == nil {
			defer f.Close()
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				if m, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module "); ok {
					return dir, strings.Trim(strings.TrimSpace(m), `"`)
				}
			}
			t.Fatalf("no module line in %s", f.Name())
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test")
		}
		dir = parent
	}
}

// storageLeaksInDir checks the non-test Go files of one directory, unless
// they make a main package.
func storageLeaksInDir(dir, module string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var leaks []string
	fset := token.NewFileSet()
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		if f.Name.Name == "main" {
			return nil, nil
		}
		for _, l := range storageLeaks(f, module) {
			leaks = append(leaks, e.Name()+": "+l)
		}
	}
	return leaks, nil
}

// storageLeaks lists the declarations of f whose API names a storage type.
func storageLeaks(f *ast.File, module string) []string {
	storage := map[string]string{} // file-local package name → import path
	var leaks []string
	for _, imp := range f.Imports {
		p, _ := strconv.Unquote(imp.Path.Value)
		if p != module+"/"+storagePackage && !strings.HasPrefix(p, module+"/"+storagePackage+"/") {
			continue
		}
		name := path.Base(p)
		if imp.Name != nil {
			name = imp.Name.Name
		}
		switch name {
		case ".":
			leaks = append(leaks, "dot import names "+p)
		case "_":
		default:
			storage[name] = p
		}
	}
	if len(storage) == 0 {
		return leaks
	}
	// named returns the storage types the given type expressions mention;
	// it is only handed expressions in type positions, where every
	// qualified name is a type.
	named := func(nodes ...ast.Node) []string {
		var found []string
		for _, n := range nodes {
			ast.Inspect(n, func(n ast.Node) bool {
				sel, ok := n.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				if x, ok := sel.X.(*ast.Ident); ok && storage[x.Name] != "" {
					found = append(found, x.Name+"."+sel.Sel.Name)
				}
				return false
			})
		}
		return found
	}
	report := func(what string, types []string) {
		if len(types) > 0 {
			leaks = append(leaks, what+" names "+strings.Join(slices.Compact(slices.Sorted(slices.Values(types))), ", "))
		}
	}
	for _, decl := range f.Decls {
		switch d := decl.(type) {
		case *ast.FuncDecl:
			if !d.Name.IsExported() {
				continue
			}
			what := "func " + d.Name.Name
			if d.Recv != nil {
				recv := receiverName(d.Recv.List[0].Type)
				if !ast.IsExported(recv) {
					continue
				}
				what = "method " + recv + "." + d.Name.Name
			}
			var sig []ast.Node
			if d.Type.TypeParams != nil {
				sig = append(sig, d.Type.TypeParams)
			}
			sig = append(sig, d.Type.Params)
			if d.Type.Results != nil {
				sig = append(sig, d.Type.Results)
			}
			report(what, named(sig...))
		case *ast.GenDecl:
			for _, spec := range d.Specs {
				switch s := spec.(type) {
				case *ast.TypeSpec:
					report("type "+s.Name.Name, typeLeaks(s, named))
				case *ast.ValueSpec:
					// Without a declared type, a composite literal of a
					// storage type gives the variable that type.
					types := []ast.Node{s.Type}
					if s.Type == nil {
						types = types[:0]
						for _, v := range s.Values {
							if u, ok := v.(*ast.UnaryExpr); ok {
								v = u.X
							}
							if lit, ok := v.(*ast.CompositeLit); ok && lit.Type != nil {
								types = append(types, lit.Type)
							}
						}
					}
					for _, n := range s.Names {
						if n.IsExported() {
							report(strings.ToLower(d.Tok.String())+" "+n.Name, named(types...))
						}
					}
				}
			}
		}
	}
	return leaks
}

// typeLeaks returns the storage types a type declaration exposes: for an
// exported type, its exported fields, its methods and anything else it is
// made of; for an unexported one, the methods of an interface (a consumer's
// contract) and nothing else.
func typeLeaks(s *ast.TypeSpec, named func(...ast.Node) []string) []string {
	var nodes []ast.Node
	if s.TypeParams != nil && s.Name.IsExported() {
		nodes = append(nodes, s.TypeParams)
	}
	switch t := s.Type.(type) {
	case *ast.InterfaceType:
		nodes = append(nodes, t)
	case *ast.StructType:
		if !s.Name.IsExported() {
			return nil
		}
		for _, field := range t.Fields.List {
			if exportedField(field) {
				nodes = append(nodes, field.Type)
			}
		}
	default:
		if !s.Name.IsExported() {
			return nil
		}
		nodes = append(nodes, t)
	}
	return named(nodes...)
}

// exportedField reports whether a struct field (or an embedded type) is
// visible outside the package.
func exportedField(f *ast.Field) bool {
	if len(f.Names) == 0 {
		return ast.IsExported(receiverName(f.Type))
	}
	return slices.ContainsFunc(f.Names, (*ast.Ident).IsExported)
}

// receiverName is the name of the type a receiver or embedded field names.
func receiverName(e ast.Expr) string {
	switch t := e.(type) {
	case *ast.StarExpr:
		return receiverName(t.X)
	case *ast.IndexExpr:
		return receiverName(t.X)
	case *ast.IndexListExpr:
		return receiverName(t.X)
	case *ast.SelectorExpr:
		return t.Sel.Name
	case *ast.Ident:
		return t.Name
	}
	return ""
}
