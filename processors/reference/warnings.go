package reference

import (
	"fmt"
	"slices"
	"strings"

	"github.com/vigil-ml/vigil/processors/stats"
	"github.com/vigil-ml/vigil/schemas"
)

// Warnings returns what looks wrong with a profile about to be stored, as
// sentences for the user: a reference without a prediction column (its
// prediction drift would never be computed), and, when seen holds the
// feature names of the model version's stored production windows (nil:
// none known), the reference features that match no production feature and
// the production features the reference lacks, each by name. Names are as
// stored: the prediction is "__prediction_score", "__prediction_label",
// "__prediction_value" and "__proba.<class>".
func Warnings(p *Profile, seen []string) []string {
	var out []string
	hasPrediction := false
	var columns []string
	for _, f := range p.Features {
		if isPrediction(f.Name) {
			hasPrediction = true
		} else {
			columns = append(columns, f.Name)
		}
	}
	if !hasPrediction {
		columns = vectorNames(columns, nil)
		out = append(out, fmt.Sprintf("reference of %s has no prediction column (prediction_score, prediction_label, prediction_value or proba.<class>): "+
			"the drift of the model's predictions will not be computed; its columns are %s (rename the prediction column, e.g. score to prediction_score)",
			modelName(p), list(columns)))
	}
	if seen == nil {
		return out
	}
	var unmatched, lacking []string
	for _, f := range p.Features {
		if !slices.Contains(seen, f.Name) {
			unmatched = append(unmatched, f.Name)
		}
	}
	for _, name := range seen {
		if p.Feature(name) == nil {
			lacking = append(lacking, name)
		}
	}
	unmatched, lacking = vectorNames(unmatched, seen), vectorNames(lacking, p.FeatureNames())
	seen = vectorNames(seen, nil)
	if len(unmatched) > 0 {
		out = append(out, fmt.Sprintf("reference columns that match no feature of %s's production events: %s "+
			"(no drift is computed for them; the events have %s: check the column names)", modelName(p), list(unmatched), list(seen)))
	}
	if len(lacking) > 0 {
		out = append(out, fmt.Sprintf("features of %s's production events that the reference lacks: %s (no drift is computed for them)",
			modelName(p), list(lacking)))
	}
	return out
}

func isPrediction(name string) bool {
	switch name {
	case schemas.PredictionScoreFeature, schemas.PredictionLabelFeature, schemas.PredictionValueFeature:
		return true
	}
	return strings.HasPrefix(name, stats.ProbaFeaturePrefix)
}

func modelName(p *Profile) string {
	if p.ModelVersion == "" {
		return fmt.Sprintf("model %s", p.Model)
	}
	return fmt.Sprintf("model %s version %s", p.Model, p.ModelVersion)
}

// list quotes names, sorted, comma-separated ("none" when empty).
func list(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	s := slices.Clone(names)
	slices.Sort(s)
	for i, n := range s {
		s[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(s, ", ")
}

// vectorNames replaces the parts of vector features in names (their header
// "__embedding.<name>" and components "__embedding.<name>[i]") by the
// vector's name, once. A vector whose header is not in names but some of
// whose components are, while other has its header, has vectors of another
// length on the other side: it is named "<name> (vectors of another
// length)".
func vectorNames(names, other []string) []string {
	out := make([]string, 0, len(names))
	done := map[string]bool{}
	headers := map[string]bool{}
	for _, n := range names {
		if v, i, ok := stats.ParseVectorPart(n); ok && i < 0 {
			headers[v] = true
		}
	}
	for _, n := range names {
		v, i, ok := stats.ParseVectorPart(n)
		switch {
		case !ok:
			out = append(out, n)
		case done[v]:
		case headers[v] || i < 0:
			done[v] = true
			out = append(out, v)
		default:
			done[v] = true
			if slices.Contains(other, stats.VectorHeader(v)) {
				out = append(out, v+" (vectors of another length)")
			} else {
				out = append(out, v)
			}
		}
	}
	return out
}
