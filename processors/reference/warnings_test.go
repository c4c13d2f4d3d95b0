package reference

import (
	"reflect"
	"testing"

	"github.com/vigil-ml/vigil/schemas"
)

func TestWarnings(t *testing.T) {
	profile := func(names ...string) *Profile {
		p := &Profile{Meta: Meta{Model: "fraud", ModelVersion: "3"}}
		for _, n := range names {
			p.Features = append(p.Features, FeatureProfile{Name: n, Kind: schemas.Number})
		}
		return p
	}
	for _, tc := range []struct {
		name string
		p    *Profile
		seen []string
		want []string
	}{
		{"prediction, no production features known", profile("__prediction_score", "amount"), nil, nil},
		{"proba columns are a prediction", profile("__proba.yes", "amount"), nil, nil},
		{"score column is not the prediction", profile("amount", "score"), nil, []string{
			`reference of model fraud version 3 has no prediction column (prediction_score, prediction_label, prediction_value or proba.<class>): ` +
				`the drift of the model's predictions will not be computed; its columns are "amount", "score" (rename the prediction column, e.g. score to prediction_score)`,
		}},
		{"columns matching no event feature", profile("__prediction_score", "amout", "country"), []string{"__prediction_score", "amount", "country"}, []string{
			`reference columns that match no feature of model fraud version 3's production events: "amout" ` +
				`(no drift is computed for them; the events have "__prediction_score", "amount", "country": check the column names)`,
			`features of model fraud version 3's production events that the reference lacks: "amount" (no drift is computed for them)`,
		}},
		{"all match", profile("__prediction_label", "amount"), []string{"__prediction_label", "amount"}, nil},
		{"vectors by name", profile("__embedding.emb", "__embedding.emb[0]", "__embedding.emb[1]", "__embedding.q", "__embedding.q[0]", "__prediction_score"),
			[]string{"__embedding.emb", "__embedding.emb[0]", "__embedding.emb[1]", "__embedding.emb[2]", "__embedding.x", "__embedding.x[0]", "__prediction_score"}, []string{
				`reference columns that match no feature of model fraud version 3's production events: "q" ` +
					`(no drift is computed for them; the events have "__prediction_score", "emb", "x": check the column names)`,
				`features of model fraud version 3's production events that the reference lacks: "emb (vectors of another length)", "x" (no drift is computed for them)`,
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Warnings(tc.p, tc.seen); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Warnings:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}
