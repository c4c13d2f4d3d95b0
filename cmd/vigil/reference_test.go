package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/urfave/cli/v2"

	"github.com/vigil-ml/vigil/internal/testenv"
)

// runReference runs `vigil reference ARGS...` in process.
func runReference(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	app := &cli.App{Name: "vigil", Writer: &out, ErrWriter: &out, Commands: []*cli.Command{referenceCommand()}}
	err := app.Run(append([]string{"vigil", "reference"}, args...))
	return out.String(), err
}

func referenceFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "train.csv")
	body := "amount,country,zip,prediction_score\n12.5,DE,01234,0.9\n3,FR,99,0.1\n,DE,,0.4\n7,US,10115,0.7\n"
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestReferenceBuildDryRun(t *testing.T) {
	out, err := runReference(t, "build", "--model", "fraud", "--version", "3", "--column", "zip=string", "--dry-run", "--log-level", "warn", referenceFile(t))
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{
		`of fraud version "3" built (dry run, not stored): 4 rows from`,
		"FEATURE", "__prediction_score  number  4",
		"amount              number  3      1 (25.0%)  7.5",
		`country             string  4      0`, `"DE" 50%`,
		`zip                 string  3      1 (25.0%)`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, args := range [][]string{
		{"build", "--model", "fraud", "--dry-run"},
		{"build", "--model", "fraud", "--dry-run", "--column", "zip", referenceFile(t)},
		{"build", "--model", "fraud", "--dry-run", filepath.Join(t.TempDir(), "x.xlsx")},
		{"build", "--version", "3", referenceFile(t)},
	} {
		if _, err := runReference(t, args...); err == nil {
			t.Errorf("%v succeeded", args)
		}
	}
}

func TestReferenceCLIIntegration(t *testing.T) {
	addr := testenv.ClickHouse(t)
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	db := "vigil_test_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		conn, err := ch.Open(&ch.Options{Addr: []string{addr}, Protocol: ch.Native})
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+db); err != nil {
			t.Errorf("drop %s: %v", db, err)
		}
	})
	flags := []string{"--clickhouse", addr, "--clickhouse-database", db, "--log-level", "warn"}
	file := referenceFile(t)
	for range 2 {
		out, err := runReference(t, append(append([]string{"build", "--model", "fraud", "--version", "3"}, flags...), file)...)
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if !strings.Contains(out, "stored: 4 rows") {
			t.Fatalf("build output:\n%s", out)
		}
	}
	out, err := runReference(t, append([]string{"list"}, flags...)...)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	row := regexp.MustCompile(`^fraud\s+3\s+\d+\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\s+4\s+\S*train\.csv\s*(yes)?$`)
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "MODEL") || !row.MatchString(lines[1]) || !row.MatchString(lines[2]) ||
		strings.HasSuffix(lines[1], "yes") || !strings.HasSuffix(lines[2], "yes") {
		t.Fatalf("list output:\n%s", out)
	}
}
