package layout

import (
	"go/build"
	"io/fs"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/vigil-ml/vigil"

// root is the repository's root directory.
func root(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("no caller")
	}
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// deps returns the module's packages that pkg imports, directly or not,
// test files left out, each with the package that imports it.
func deps(t *testing.T, dir, pkg string) map[string]string {
	t.Helper()
	seen := map[string]string{}
	var walk func(path string)
	walk = func(path string) {
		p, err := build.Import(path, dir, 0)
		if err != nil {
			t.Fatalf("import %s: %v", path, err)
		}
		for _, imp := range p.Imports {
			if _, ok := seen[imp]; ok || !strings.HasPrefix(imp, module+"/") {
				continue
			}
			seen[imp] = path
			walk(imp)
		}
	}
	walk(pkg)
	return seen
}

// The stages in processors/ reach the sinks through ports they declare:
// no processor imports a sink, not even through another package.
func TestProcessorsImportNoSink(t *testing.T) {
	dir := root(t)
	var pkgs []string
	err := filepath.WalkDir(filepath.Join(dir, "processors"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() || d.Name() == "testdata" {
			return err
		}
		if p, err := build.ImportDir(path, 0); err == nil && len(p.GoFiles) > 0 {
			rel, _ := filepath.Rel(dir, path)
			pkgs = append(pkgs, module+"/"+filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) < 7 {
		t.Fatalf("found %d packages under processors/: %v", len(pkgs), pkgs)
	}
	for _, pkg := range pkgs {
		d := deps(t, dir, pkg)
		var bad []string
		for imp, by := range d {
			if strings.HasPrefix(imp, module+"/sinks/") {
				bad = append(bad, imp+" (imported by "+by+")")
			}
		}
		slices.Sort(bad)
		for _, b := range bad {
			t.Errorf("%s depends on %s", pkg, b)
		}
	}
}
