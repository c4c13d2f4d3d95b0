package reference

import (
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/vigil-ml/vigil/processors/stats"
)

// checkVectorProfile checks a profile of the vectors (3,4), missing, (0,-2),
// (6,8): a header of norms and two components, each numeric with bins and
// every value.
func checkVectorProfile(t *testing.T, p *Profile, missing uint64) {
	t.Helper()
	h := p.Feature(stats.VectorHeader("emb"))
	c0, c1 := p.Feature(stats.VectorComponent("emb", 0)), p.Feature(stats.VectorComponent("emb", 1))
	if h == nil || c0 == nil || c1 == nil || p.Feature(stats.VectorComponent("emb", 2)) != nil || p.Feature("emb") != nil {
		t.Fatalf("features %v", p.FeatureNames())
	}
	if h.Count != 3 || h.Missing != missing || h.Mean != 17.0/3 || !h.Exact {
		t.Errorf("header %+v", *h)
	}
	if c0.Count != 3 || c0.Mean != 3 || c0.Min != 0 || c0.Max != 6 || c1.Mean != 10.0/3 || c1.Min != -2 ||
		len(c0.Hist) == 0 || len(c1.Quantiles) != 3 || !c1.Exact {
		t.Errorf("components %+v\n%+v", *c0, *c1)
	}
}

// TestReadVectorsJSONL: arrays of numbers in JSON Lines are a vector
// feature; a vector of another length or with a non-number is an error
// naming the line.
func TestReadVectorsJSONL(t *testing.T) {
	path := writeFile(t, "ref.jsonl", `{"emb":[3,4],"prediction_score":0.1}
{"emb":null,"prediction_score":0.2}
{"emb":[0,-2],"prediction_score":0.3}
{"emb":[6,8],"prediction_score":0.4}
`)
	checkVectorProfile(t, mustBuildFile(t, path, ReadOptions{}), 1)
	for _, tc := range []struct{ in, want string }{
		{"{\"emb\":[1,2]}\n{\"emb\":[1,2,3]}\n", `ref.jsonl:2: key "emb": vector of 3 values where earlier vectors have 2`},
		{"{\"emb\":[1,\"x\"]}\n", `ref.jsonl:1: key "emb": vector element 1 is not a finite number`},
		{"{\"emb\":[]}\n", `ref.jsonl:1: key "emb": a vector has 1 to 4096 numbers, not 0`},
		{"{\"emb\":[1]}\n{\"emb\":2}\n", `ref.jsonl:2: key "emb": number value where earlier values are vector`},
	} {
		_, err := buildFile(t, writeFile(t, "ref.jsonl", tc.in), ReadOptions{})
		if err == nil || !strings.HasSuffix(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want ...%s", tc.in, err, tc.want)
		}
	}
}

// TestReadVectorsParquet: list<float64> and fixed_size_list<float32>
// columns (as pyarrow writes embeddings) are vector features.
func TestReadVectorsParquet(t *testing.T) {
	for _, dt := range []arrow.DataType{arrow.ListOf(arrow.PrimitiveTypes.Float64), arrow.FixedSizeListOf(2, arrow.PrimitiveTypes.Float32)} {
		mem := memory.DefaultAllocator
		b := array.NewBuilder(mem, dt)
		// pqarrow writes no null fixed_size_list rows (pyarrow does).
		rows := [][]float64{{3, 4}, nil, {0, -2}, {6, 8}}
		missing := uint64(1)
		if dt.ID() == arrow.FIXED_SIZE_LIST {
			rows, missing = [][]float64{{3, 4}, {0, -2}, {6, 8}}, 0
		}
		for _, r := range rows {
			if r == nil {
				b.AppendNull()
				continue
			}
			switch lb := b.(type) {
			case *array.ListBuilder:
				lb.Append(true)
				lb.ValueBuilder().(*array.Float64Builder).AppendValues(r, nil)
			case *array.FixedSizeListBuilder:
				lb.Append(true)
				for _, x := range r {
					lb.ValueBuilder().(*array.Float32Builder).Append(float32(x))
				}
			}
		}
		col := b.NewArray()
		b.Release()
		sb := array.NewFloat64Builder(mem)
		sb.AppendValues([]float64{0.1, 0.2, 0.3, 0.4}[:len(rows)], nil)
		score := sb.NewArray()
		sb.Release()
		rec := array.NewRecord(arrow.NewSchema([]arrow.Field{{Name: "emb", Type: dt, Nullable: true}, {Name: "prediction_score", Type: arrow.PrimitiveTypes.Float64}}, nil),
			[]arrow.Array{col, score}, int64(len(rows)))
		path := writeParquet(t, rec)
		rec.Release()
		col.Release()
		score.Release()
		t.Run(dt.String(), func(t *testing.T) { checkVectorProfile(t, mustBuildFile(t, path, ReadOptions{}), missing) })
	}
}
