package main

import (
	"bytes"
	"errors"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/vigil-ml/vigil/internal/testenv"
)

func TestFlagsFirst(t *testing.T) {
	tests := []struct {
		name string
		args string
		want string
	}{
		{"flags after FILE move before it", "vigil reference build f.csv --model m --dry-run --bins 5",
			"vigil reference build --model m --dry-run --bins 5 f.csv"},
		{"flags on both sides", "vigil reference build --model m f.csv --version=3 --column a=string",
			"vigil reference build --model m --version=3 --column a=string f.csv"},
		{"a bool flag takes no value", "vigil reference build f.csv --dry-run --model m",
			"vigil reference build --dry-run --model m f.csv"},
		{"-- ends the flags", "vigil reference build --model m -- --odd-name.csv",
			"vigil reference build --model m -- --odd-name.csv"},
		{"an unknown flag stays for urfave/cli", "vigil alerts validate rules.yaml --nope x",
			"vigil alerts validate --nope rules.yaml x"},
		{"nothing to move", "vigil query drift --model m --every 1h", "vigil query drift --model m --every 1h"},
		{"not a command", "vigil nope a --b", "vigil nope a --b"},
		{"a command with subcommands", "vigil reference --help", "vigil reference --help"},
		{"no arguments", "vigil", "vigil"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := flagsFirst(newApp(), strings.Fields(tt.args))
			if want := strings.Fields(tt.want); !slices.Equal(got, want) {
				t.Errorf("flagsFirst(%s) = %q, want %q", tt.args, got, want)
			}
		})
	}
}

// TestReferenceBuildFlagsAfterFile: `vigil reference build FILE --model m`
// reads the flags after FILE (it used to fail on a missing --model).
func TestReferenceBuildFlagsAfterFile(t *testing.T) {
	app := newApp()
	var out, errOut bytes.Buffer
	app.Writer, app.ErrWriter = &out, &errOut
	args := []string{"vigil", "reference", "build", referenceFile(t), "--model", "fraud", "--version", "3", "--column", "zip=string", "--dry-run"}
	if err := app.Run(flagsFirst(app, args)); err != nil {
		t.Fatalf("%v\n%s%s", err, out.String(), errOut.String())
	}
	for _, want := range []string{`of fraud version "3" built (dry run, not stored): 4 rows from`, `zip                 string  3      1 (25.0%)`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// runBinary runs the built vigil with stdout and stderr on pipes (not a
// terminal) and returns both and the exit status.
func runBinary(t *testing.T, args ...string) (stdout, stderr string, status int) {
	t.Helper()
	cmd := exec.Command(testenv.BuildVigil(t), args...)
	cmd.Env = []string{"PATH=/usr/bin:/bin"} // no VIGIL_* of the test's environment
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		status = exit.ExitCode()
	case err != nil:
		t.Fatalf("run vigil %v: %v", args, err)
	}
	return o.String(), e.String(), status
}

// TestOneShotCommandsKeepStdoutForResults: query and reference log at warn
// by default, so that stdout holds the result and stderr nothing when all
// goes well; a --log-level still shows the (JSON, not a terminal) logs.
func TestOneShotCommandsKeepStdoutForResults(t *testing.T) {
	file := referenceFile(t)
	stdout, stderr, status := runBinary(t, "reference", "build", "--dry-run", file, "--model", "fraud")
	if status != 0 || stderr != "" || !strings.Contains(stdout, `of fraud version "" built (dry run, not stored): 4 rows`) {
		t.Errorf("reference build: status %d\nstdout:\n%s\nstderr:\n%s", status, stdout, stderr)
	}
	stdout, stderr, status = runBinary(t, "reference", "build", "--dry-run", "--model", "fraud", "--log-level", "info", file)
	if status != 0 || !strings.Contains(stderr, `"message":"reference built"`) || strings.Contains(stdout, "reference built") {
		t.Errorf("reference build --log-level info: status %d\nstdout:\n%s\nstderr:\n%s", status, stdout, stderr)
	}

	_, db := startTestSink(t, "vigil_oneshot")
	chArgs := []string{"--clickhouse", testenv.ClickHouse(t), "--clickhouse-database", db}
	tests := []struct {
		name       string
		args       []string
		wantStderr string
	}{
		{"query performance", []string{"query", "performance", "--model", "unknown"},
			`vigil query performance: no rows matched: no performance windows of model "unknown" (any version) with window start in [`},
		{"query drift", []string{"query", "drift", "--model", "unknown", "--version", "7"},
			`vigil query drift: no rows matched: no window states of model "unknown" version "7" with window start in [`},
		{"query labels", []string{"query", "labels", "--since", "1h"},
			"vigil query labels: no rows matched: no labels received in the last 1h0m0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, status := runBinary(t, append(tt.args, chArgs...)...)
			if status != 0 || stdout != "" || !strings.HasPrefix(stderr, tt.wantStderr) || strings.Count(stderr, "\n") != 1 {
				t.Errorf("status %d (want 0)\nstdout (want none):\n%s\nstderr (want one line %q...):\n%s", status, stdout, tt.wantStderr, stderr)
			}
		})
	}
	// The sink's start and stop lines are there at info.
	_, stderr, _ = runBinary(t, append([]string{"query", "labels", "--log-level", "info"}, chArgs...)...)
	if !strings.Contains(stderr, `"message":"clickhouse sink started"`) || !strings.Contains(stderr, `"message":"clickhouse sink stopped"`) {
		t.Errorf("query labels --log-level info: stderr lacks the sink's log lines:\n%s", stderr)
	}
}
