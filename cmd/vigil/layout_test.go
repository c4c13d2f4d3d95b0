package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// cmd/vigil only turns flags into a config and calls the application: its
// code (tests aside) imports no ClickHouse driver, runs no SQL itself and
// holds none of the job logic that lives in internal/app, internal/demo and
// processors/... (issue 10).
func TestCommandHoldsOnlyCLICode(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	// Declarations that moved out of cmd/vigil, and where they went.
	moved := map[string]string{
		"stack": "internal/app", "startStack": "internal/app.Start", "periodic": "internal/lifecycle.Periodic",
		"driftJob": "processors/drift.Job", "newDriftJob": "processors/drift.NewJob",
		"performanceJob": "processors/performance.Job", "newPerformanceJob": "processors/performance.NewJob",
		"joinPerformance": "processors/performance.Join", "mergePerformance": "processors/performance.MergeWindows",
		"driftBuckets": "processors/drift.Buckets", "bucketDrift": "processors/drift.Bucket",
		"alertJob": "processors/alerting.Runner", "newAlertJob": "internal/app.NewAlertRunner", "loadRules": "processors/alerting.LoadRules",
		"referenceFromWindows": "processors/reference.BuildFromStore", "demoModel": "internal/demo", "demoReceiver": "internal/demo", "demoReference": "internal/demo", "runDemoAlerts": "internal/demo",
	}
	// Methods that run SQL on a connection.
	sqlCalls := map[string]bool{"Conn": true, "Query": true, "QueryRow": true, "Exec": true, "PrepareBatch": true}
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, name, src, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		for _, imp := range f.Imports {
			if path, _ := strconv.Unquote(imp.Path.Value); strings.HasPrefix(path, "github.com/ClickHouse/") {
				t.Errorf("%s imports the ClickHouse driver %s: SQL belongs in sinks/clickhouse", fset.Position(imp.Pos()), path)
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.FuncDecl:
				if where, ok := moved[n.Name.Name]; ok && n.Recv == nil {
					t.Errorf("%s: func %s is job logic; it lives in %s", fset.Position(n.Pos()), n.Name.Name, where)
				}
			case *ast.TypeSpec:
				if where, ok := moved[n.Name.Name]; ok {
					t.Errorf("%s: type %s is job logic; it lives in %s", fset.Position(n.Pos()), n.Name.Name, where)
				}
			case *ast.SelectorExpr:
				if sqlCalls[n.Sel.Name] {
					t.Errorf("%s: .%s runs SQL; add a sink method (sinks/clickhouse) instead", fset.Position(n.Pos()), n.Sel.Name)
				}
			}
			return true
		})
	}
	if checked < 5 {
		t.Fatalf("checked %d files: run from cmd/vigil", checked)
	}
}
