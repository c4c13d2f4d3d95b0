package multivariate_test

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/vigil-ml/vigil/processors/multivariate"
	"github.com/vigil-ml/vigil/processors/reference"
	"github.com/vigil-ml/vigil/processors/stats"
)

// nannymlTolerance is the absolute tolerance on reconstruction errors,
// their chunk means, sampling errors and thresholds against NannyML. The
// data round-trips exactly (17 significant digits); what differs is the
// order of floating-point operations (gonum's symmetric eigensolver on the
// covariance against sklearn's LAPACK solver, sums in another order): the
// errors are sums of a few squares of values of order 1 after a d×d
// eigendecomposition, so they agree to about 1e-13; 1e-9 leaves room for
// another LAPACK without hiding a wrong encoding or imputation (which moves
// the numbers by 1e-3 or more).
const nannymlTolerance = 1e-9

type nannymlChunk struct {
	Value          float64  `json:"value"`
	SamplingError  float64  `json:"sampling_error"`
	UpperThreshold *float64 `json:"upper_threshold"`
	LowerThreshold *float64 `json:"lower_threshold"`
	Alert          bool     `json:"alert"`
}

type nannymlVectors struct {
	ChunkRows       int            `json:"chunk_rows"`
	NComponents     int            `json:"n_components"`
	Explained       float64        `json:"explained"`
	LowerThreshold  *float64       `json:"lower_threshold"`
	UpperThreshold  float64        `json:"upper_threshold"`
	ReferenceChunks []float64      `json:"reference_chunks"`
	Chunks          []nannymlChunk `json:"chunks"`
	RowErrors       []float64      `json:"row_errors"`
}

func readCSV(t *testing.T, name string, emit func(arrow.Record)) {
	t.Helper()
	path := filepath.Join("..", "..", "testdata", "multivariate", name)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	err = reference.ReadCSV(f, path, reference.ReadOptions{Model: "m", ModelVersion: "1", BatchRows: 333}, func(rec arrow.Record) error {
		emit(rec)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func near(t *testing.T, what string, got, want float64) {
	t.Helper()
	if math.Abs(got-want) > nannymlTolerance {
		t.Errorf("%s = %.15g, NannyML %.15g (diff %.3g)", what, got, want, got-want)
	}
}

// TestAgainstNannyML fits on the committed reference (through the same CSV
// reader as `vigil reference build`) and scores the committed analysis
// through a Scorer into window states of 500 rows, as the processor does,
// then compares every number with NannyML 0.13's
// (testdata/multivariate/gen_nannyml.py).
func TestAgainstNannyML(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "testdata", "multivariate", "nannyml.json"))
	if err != nil {
		t.Fatal(err)
	}
	var want nannymlVectors
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	fit, err := multivariate.NewFitter(multivariate.FitOptions{ChunkRows: want.ChunkRows})
	if err != nil {
		t.Fatal(err)
	}
	readCSV(t, "reference.csv", func(rec arrow.Record) {
		if err := fit.Add(rec); err != nil {
			t.Fatal(err)
		}
	})
	m, err := fit.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Components) != want.NComponents {
		t.Fatalf("%d components, NannyML %d", len(m.Components), want.NComponents)
	}
	near(t, "explained variance", m.Explained, want.Explained)
	near(t, "upper threshold", m.Upper, want.UpperThreshold)
	if want.LowerThreshold == nil {
		if !math.IsNaN(m.Lower) {
			t.Errorf("lower threshold %v, NannyML none", m.Lower)
		}
	} else {
		near(t, "lower threshold", m.Lower, *want.LowerThreshold)
	}
	if m.Chunks != len(want.ReferenceChunks) {
		t.Errorf("%d reference chunks, NannyML %d", m.Chunks, len(want.ReferenceChunks))
	}

	// Round trip through the profile encoding first: the processor scores
	// with the decoded model.
	enc, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var dm multivariate.Model
	if err := dm.UnmarshalBinary(enc); err != nil {
		t.Fatal(err)
	}
	sc := multivariate.NewScorer(nil, nopLog())
	sc.SetModel("m", "1", 7, &dm)

	var states []*stats.WindowState
	var rowErrors []float64
	row := 0
	readCSV(t, "analysis.csv", func(rec arrow.Record) {
		if len(rowErrors) < len(want.RowErrors) {
			rowErrors = dm.Errors(rowErrors, rec, 0, min(int(rec.NumRows()), len(want.RowErrors)-len(rowErrors)))
		}
		for lo := 0; lo < int(rec.NumRows()); {
			chunk := row / want.ChunkRows
			for len(states) <= chunk {
				states = append(states, stats.NewWindowState(stats.Key{Model: "m", ModelVersion: "1", WindowStart: int64(len(states))}, int64(len(states)+1)))
			}
			hi := min(int(rec.NumRows()), lo+(chunk+1)*want.ChunkRows-row)
			states[chunk].AddRange(rec, lo, hi)
			sc.AddRange(states[chunk], rec, lo, hi)
			row += hi - lo
			lo = hi
		}
	})
	for i, w := range want.RowErrors {
		near(t, "row error", rowErrors[i], w)
	}
	if len(states) != len(want.Chunks) {
		t.Fatalf("%d chunks, NannyML %d", len(states), len(want.Chunks))
	}
	for i, w := range want.Chunks {
		r := multivariate.Evaluate(&dm, 7, states[i])
		if r.N != uint64(want.ChunkRows) {
			t.Errorf("chunk %d: %d errors, want %d", i, r.N, want.ChunkRows)
		}
		near(t, "chunk mean error", r.Score, w.Value)
		near(t, "chunk sampling error", r.SamplingError, w.SamplingError)
		if r.Drifted != w.Alert {
			t.Errorf("chunk %d: drifted %v, NannyML alert %v (score %v, thresholds %v..%v)", i, r.Drifted, w.Alert, r.Score, r.Lower, r.Upper)
		}
	}
}
