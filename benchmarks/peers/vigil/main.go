// Command vigil-peers times Vigil's side of the peer comparison of
// benchmarks/peers/run.sh, as library calls in one process on the files
// gen.py wrote, each read into memory first (reference.ReadFile; its
// time is printed apart, read_*_s): the reference build of ref.parquet
// (reference.Builder), the window ingest of cur.parquet
// (stats.WindowState.AddRange, value sketches on as in production), the
// drift evaluation (drift.EvaluateWindow), and, for whylogs, the window
// update of wl.parquet alone. It prints one JSON object of seconds and
// counts on stdout. Not part of make test.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/vigil-ml/vigil/processors/drift"
	"github.com/vigil-ml/vigil/processors/reference"
	"github.com/vigil-ml/vigil/processors/stats"
)

func main() {
	dir := flag.String("dir", ".", "directory with ref.parquet, cur.parquet and wl.parquet")
	flag.Parse()
	if err := run(*dir); err != nil {
		fmt.Fprintln(os.Stderr, "vigil-peers:", err)
		os.Exit(1)
	}
}

// readAll reads the records of path (kept in memory, so that the timed
// steps leave the Parquet reading out, as the peers' times leave out
// pandas').
func readAll(ctx context.Context, path string) ([]arrow.Record, time.Duration, error) {
	var recs []arrow.Record
	began := time.Now()
	err := reference.ReadFile(ctx, path, reference.ReadOptions{Model: "peers", ModelVersion: "1"}, func(rec arrow.Record) error {
		rec.Retain()
		recs = append(recs, rec)
		return nil
	})
	return recs, time.Since(began), err
}

// ingest adds recs to a fresh window state.
func ingest(recs []arrow.Record) (*stats.WindowState, time.Duration) {
	st := stats.NewWindowState(stats.Key{Model: "peers", ModelVersion: "1"}, 0)
	began := time.Now()
	for _, rec := range recs {
		st.AddRange(rec, 0, int(rec.NumRows()))
	}
	return st, time.Since(began)
}

func run(dir string) error {
	ctx := context.Background()
	out := map[string]any{}
	ref, took, err := readAll(ctx, filepath.Join(dir, "ref.parquet"))
	if err != nil {
		return err
	}
	out["read_ref_s"] = took.Seconds()
	cur, took, err := readAll(ctx, filepath.Join(dir, "cur.parquet"))
	if err != nil {
		return err
	}
	out["read_cur_s"] = took.Seconds()
	began := time.Now()
	b, err := reference.NewBuilder(reference.Meta{Model: "peers", ModelVersion: "1"}, reference.BuilderOptions{})
	if err != nil {
		return err
	}
	for _, rec := range ref {
		if err := b.Add(rec); err != nil {
			return err
		}
	}
	prof, err := b.Finish()
	if err != nil {
		return err
	}
	out["reference_build_s"] = time.Since(began).Seconds()
	st, took := ingest(cur)
	out["window_ingest_s"] = took.Seconds()
	began = time.Now()
	wd := drift.EvaluateWindow(prof, st)
	out["evaluate_s"] = time.Since(began).Seconds()
	drifted := 0
	for _, f := range wd.Features {
		if f.Drifted {
			drifted++
		}
	}
	out["features"], out["drifted"], out["share"] = len(wd.Features), drifted, wd.Share
	wl, took, err := readAll(ctx, filepath.Join(dir, "wl.parquet"))
	if err != nil {
		return err
	}
	out["read_wl_s"] = took.Seconds()
	_, took = ingest(wl)
	out["whylogs_case_window_update_s"] = took.Seconds()
	return json.NewEncoder(os.Stdout).Encode(out)
}
