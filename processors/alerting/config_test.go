package alerting

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

func TestLoadExampleFile(t *testing.T) {
	cfg, err := LoadFile("testdata/rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(DefaultCatalog()); err != nil {
		t.Fatalf("testdata/rules.yaml does not validate:\n%v", err)
	}
	if got := len(cfg.compiled); got != len(cfg.Rules) || got != 6 {
		t.Fatalf("compiled %d rules of %d, want 6", got, len(cfg.Rules))
	}
	byName := map[string]*compiledRule{}
	for _, r := range cfg.compiled {
		byName[r.name] = r
	}
	drift := byName["AmountDrift"]
	if drift.forWindows != 3 || drift.severity != SeverityCritical || drift.cond.kind != condAbove || drift.cond.a != 0.2 {
		t.Errorf("AmountDrift compiled as %+v", drift)
	}
	null := byName["NullRateBand"]
	if got := strings.Join(null.receivers, ","); got != "team-slack" {
		t.Errorf("NullRateBand receivers = %q, want the default team-slack", got)
	}
	if null.severity != SeverityWarning || strings.Join(null.models, ",") != "*" || strings.Join(null.features, ",") != "*" ||
		len(null.segments) != 1 || null.segments[0] != "" {
		t.Errorf("NullRateBand defaults: %+v", null)
	}
	if _, ok := null.annotations["summary"]; !ok {
		t.Error("NullRateBand has no default summary")
	}
	if r := byName["TrafficJump"]; r.features[0] != "" || r.cond.kind != condChangePrevious || !r.cond.relative {
		t.Errorf("TrafficJump compiled as %+v", r)
	}
	if r := byName["LowRecall"]; r.delay != time.Hour {
		t.Errorf("LowRecall delay = %v", r.delay)
	}
	if r := byName["FraudSilent"]; r.noData != 10*time.Minute || r.cond.kind != condNone {
		t.Errorf("FraudSilent compiled as %+v", r)
	}
}

func TestLoadErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"empty", "", []string{"empty"}},
		{"unknown top-level key", "receivers: []\nrulez: []\n", []string{"line 2", "rulez", "the top level"}},
		{"unknown rule key", "rules:\n  - name: A\n    metric: psi\n    treshold: 3\n", []string{"line 4", "treshold", "a rule"}},
		{"unknown receiver key", "receivers:\n  - name: a\n    type: slack\n    uri: x\n", []string{"line 4", "uri", "a receiver"}},
		{"unknown condition key", "rules:\n  - name: A\n    condition: {abve: 1}\n", []string{"line 3", "abve", "condition"}},
		{"unknown change key", "rules:\n  - name: A\n    condition:\n      change: {against: previous, by: 1}\n", []string{"line 4", "by", "condition.change"}},
		{"wrong type", "rules:\n  - name: A\n    for: three\n", []string{"line 3", "three"}},
		{"number as duration", "rules:\n  - name: A\n    delay: 60\n", []string{"line 3", "60"}},
		{"bad duration", "rules:\n  - name: A\n    delay: 1 hour\n", []string{"line 3"}},
		{"syntax", "rules:\n  - name: A\n   metric: psi\n", []string{"yaml: line"}},
		{"second document", "rules: []\n---\nrules: []\n", []string{"second YAML document"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(strings.NewReader(tc.yaml))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// validBase is a valid file that the validation cases break one field at a time.
const validBase = `
receivers:
  - name: hook
    type: webhook
    url: http://example.com/hook
    secret: s3cret
rules:
  - name: R
    metric: psi
    condition: {above: 0.2}
    receivers: [hook]
`

func TestValidateErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string // every string must be in one line of the error
	}{
		{"rule name missing", strings.Replace(validBase, "name: R", "name: ''", 1), []string{`rule #1: name: is required`}},
		{"rule name charset", strings.Replace(validBase, "name: R", "name: 9-lives", 1), []string{`line 8: rule "9-lives": name:`}},
		{"duplicate rule", validBase + "  - name: R\n    metric: kl\n    condition: {above: 1}\n    receivers: [hook]\n", []string{`rule "R": name: duplicate of rule #1`}},
		{"unknown metric", strings.Replace(validBase, "metric: psi", "metric: psy", 1), []string{`line 9: rule "R": metric: "psy" is not a known metric`}},
		{"metric missing", strings.Replace(validBase, "    metric: psi\n", "", 1), []string{`rule "R": metric: is required`}},
		{"features on model-level metric", strings.Replace(validBase, "metric: psi", "metric: accuracy\n    features: [x]", 1), []string{`rule "R": features: metric "accuracy" is model-level`}},
		{"bad glob", strings.Replace(validBase, "metric: psi", "metric: psi\n    models: ['fraud[']", 1), []string{`models: "fraud[" is not a valid glob`}},
		{"empty model pattern", strings.Replace(validBase, "metric: psi", "metric: psi\n    models: ['']", 1), []string{`models: an empty pattern`}},
		{"no condition", strings.Replace(validBase, "    condition: {above: 0.2}\n", "", 1), []string{`rule "R": condition: is required`}},
		{"empty condition", strings.Replace(validBase, "{above: 0.2}", "{}", 1), []string{`condition: give one of`}},
		{"two conditions", strings.Replace(validBase, "{above: 0.2}", "{above: 0.2, below: 0.1}", 1), []string{`condition: give exactly one`, "above and below"}},
		{"outside one value", strings.Replace(validBase, "{above: 0.2}", "{outside: [0.2]}", 1), []string{`condition.outside: want [low, high]`}},
		{"outside reversed", strings.Replace(validBase, "{above: 0.2}", "{outside: [0.9, 0.1]}", 1), []string{`condition.outside: low 0.9 must be below high 0.1`}},
		{"above NaN", strings.Replace(validBase, "{above: 0.2}", "{above: .nan}", 1), []string{`condition.above: must be a finite number`}},
		{"change against", strings.Replace(validBase, "{above: 0.2}", "{change: {against: yesterday, above: 1}}", 1), []string{`condition.change.against: "yesterday"`}},
		{"change above missing", strings.Replace(validBase, "{above: 0.2}", "{change: {against: previous}}", 1), []string{`condition.change.above: is required`}},
		{"change above negative", strings.Replace(validBase, "{above: 0.2}", "{change: {against: previous, above: -1}}", 1), []string{`condition.change.above: must not be negative`}},
		{"for zero", strings.Replace(validBase, "metric: psi", "metric: psi\n    for: 0", 1), []string{`line 10: rule "R": for: must be at least 1, got 0`}},
		{"for negative", strings.Replace(validBase, "metric: psi", "metric: psi\n    for: -2", 1), []string{`for: must be at least 1, got -2`}},
		{"negative delay", strings.Replace(validBase, "metric: psi", "metric: psi\n    delay: -1m", 1), []string{`delay: must not be negative`}},
		{"severity", strings.Replace(validBase, "metric: psi", "metric: psi\n    severity: page", 1), []string{`severity: "page" is not critical, warning or info`}},
		{"label name", strings.Replace(validBase, "metric: psi", "metric: psi\n    labels: {team-name: x}", 1), []string{`labels: label name "team-name"`}},
		{"reserved label", strings.Replace(validBase, "metric: psi", "metric: psi\n    labels: {severity: x}", 1), []string{`labels: "severity" is set by Vigil`}},
		{"unknown receiver", strings.Replace(validBase, "receivers: [hook]", "receivers: [hook, pager]", 1), []string{`rule "R": receivers: unknown receiver "pager" (configured: hook)`}},
		{"no receivers", strings.Replace(validBase, "    receivers: [hook]\n", "", 1), []string{`rule "R": receivers: at least one is required`}},
		{"unknown default receiver", validBase + "defaults:\n  receivers: [nope]\n", []string{`defaults: receivers: unknown receiver "nope"`}},
		{"no_data wrong metric", strings.Replace(validBase, "    condition: {above: 0.2}\n", "    no_data: 10m\n", 1), []string{`no_data: only applies to metric event_count`}},
		{"no_data with condition", strings.Replace(validBase, "metric: psi", "metric: event_count\n    no_data: 10m", 1), []string{`condition: a no_data rule has no condition`}},
		{"no_data with for", strings.Replace(validBase, "metric: psi\n    condition: {above: 0.2}", "metric: event_count\n    no_data: 10m\n    for: 2", 1), []string{`for: does not apply to a no_data rule`}},
		{"no_data with segments", strings.Replace(validBase, "metric: psi\n    condition: {above: 0.2}", "metric: event_count\n    no_data: 10m\n    segments: ['region=*']", 1), []string{`segments: a no_data rule watches the whole traffic`}},
		{"no_data zero", strings.Replace(validBase, "metric: psi\n    condition: {above: 0.2}", "metric: event_count\n    no_data: 0s", 1), []string{`no_data: must be positive`}},
		{"receiver type", strings.Replace(validBase, "type: webhook", "type: email", 1), []string{`line 4: receiver "hook": type: "email" is not`}},
		{"receiver type missing", strings.Replace(validBase, "    type: webhook\n", "", 1), []string{`receiver "hook": type: is required`}},
		{"receiver name missing", strings.Replace(validBase, "name: hook", "name: ''", 1), []string{`receiver #1: name: is required`}},
		{"duplicate receiver", strings.Replace(validBase, "rules:", "  - name: hook\n    type: slack\n    url: http://x\nrules:", 1), []string{`receiver "hook": name: duplicate of receiver #1`}},
		{"webhook secret missing", strings.Replace(validBase, "    secret: s3cret\n", "", 1), []string{`receiver "hook": secret: is required for type webhook`}},
		{"webhook url missing", strings.Replace(validBase, "    url: http://example.com/hook\n", "", 1), []string{`receiver "hook": url: is required`}},
		{"routing_key on webhook", strings.Replace(validBase, "secret: s3cret", "secret: s3cret\n    routing_key: k", 1), []string{`receiver "hook": routing_key: only applies to receivers of type pagerduty`}},
		{"secret on slack", strings.Replace(validBase, "type: webhook", "type: slack", 1), []string{`receiver "hook": secret: only applies to receivers of type webhook`}},
		{"group_by on webhook", strings.Replace(validBase, "secret: s3cret", "secret: s3cret\n    group_by: [model]", 1), []string{`group_by: only applies to receivers of type alertmanager`}},
		{"pagerduty routing key", strings.Replace(strings.Replace(validBase, "type: webhook", "type: pagerduty", 1), "    secret: s3cret\n", "", 1), []string{`receiver "hook": routing_key: is required for type pagerduty`}},
		{"pagerduty severity", strings.Replace(strings.Replace(validBase, "type: webhook", "type: pagerduty", 1), "secret: s3cret", "routing_key: k\n    severity: high", 1), []string{`receiver "hook": severity: "high"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Load(strings.NewReader(tc.yaml))
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			err = cfg.Validate(nil)
			if err == nil {
				t.Fatal("Validate accepted it")
			}
			if cfg.compiled != nil {
				t.Error("an invalid config was compiled")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	const y = `
receivers:
  - name: a
    type: carrier-pigeon
rules:
  - name: One
    metric: nope
    condition: {above: 1}
    receivers: [a]
  - name: Two
    metric: psi
    for: 0
    receivers: [b]
`
	cfg, err := Load(strings.NewReader(y))
	if err != nil {
		t.Fatal(err)
	}
	err = cfg.Validate(nil)
	if err == nil {
		t.Fatal("no error")
	}
	lines := strings.Split(err.Error(), "\n")
	want := []string{
		`line 4: receiver "a": type: "carrier-pigeon"`,
		`line 7: rule "One": metric: "nope"`,
		`line 12: rule "Two": for: must be at least 1`,
		`line 10: rule "Two": condition: is required`,
		`line 13: rule "Two": receivers: unknown receiver "b"`,
	}
	if len(lines) != len(want) {
		t.Errorf("%d problems, want %d:\n%v", len(lines), len(want), err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in:\n%v", w, err)
		}
	}
}

func TestValidateTemplates(t *testing.T) {
	for _, tc := range []struct {
		name, annotations string
		want              string // "" means valid
	}{
		{"fields", `{summary: "{{.Rule}} {{.Status}} {{.Severity}} {{.Model}} {{.Metric}} {{.Feature}} {{.Segment}} {{.Value}} {{.Threshold}} {{.Base}} {{.Window}} {{.WindowStart}} {{.WindowEnd}} {{.LastSeen}} {{.Labels.alertname}}"}`, ""},
		{"printf", `{summary: '{{printf "%.3f" .Value}}'}`, ""},
		{"parse error", `{summary: "{{.Model"}`, `annotations.summary: template: summary:1: unclosed action`},
		{"unknown field", `{description: "{{.Modle}}"}`, `annotations.description:`},
		{"unknown function", `{summary: "{{humanize .Value}}"}`, `annotations.summary: template: summary:1: function "humanize" not defined`},
		{"bad argument", `{summary: "{{printf 3}}"}`, `annotations.summary: template: summary:1:9: executing "summary" at <3>: expected string`},
		{"missing label", `{summary: "{{.Labels.team}}"}`, `annotations.summary: template: summary:1:9: executing "summary" at <.Labels.team>: map has no entry for key "team"`},
		{"rule label", `{summary: "{{.Labels.team}} {{.Labels.feature}} {{.Labels.severity}}"}` + "\n    labels: {team: risk}", ``},
		{"segment label of whole traffic", `{summary: "{{.Labels.segment}}"}`, `map has no entry for key "segment"`},
		{"segment label with index", `{summary: "{{index .Labels \"segment\"}}"}`, ``},
		{"bad name", `{"run book": "x"}`, `annotations: annotation name "run book"`},
		{"too long", `{summary: "{{range 10000}}xxxxxxxx{{end}}"}`, `rendered text exceeds`},
		{"long loop", `{summary: "{{range 100000}}{{end}}"}`, `range over 100000 iterates more than`},
		{"nested loops", `{summary: "{{range 1000}}{{range 1000}}{{end}}{{end}}"}`, `range over 1000 iterates more than`},
		{"define", `{summary: "{{define \"x\"}}a{{end}}{{template \"x\"}}"}`, `{{define}} and {{block}} are not supported`},
		{"template", `{summary: "{{if .Model}}{{template \"summary\"}}{{end}}"}`, `{{template}} is not supported`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			y := strings.Replace(validBase, "metric: psi", "metric: psi\n    annotations: "+tc.annotations, 1)
			cfg, err := Load(strings.NewReader(y))
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			err = cfg.Validate(nil)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && err == nil:
				t.Fatal("Validate accepted it")
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("error does not mention %q:\n%v", tc.want, err)
			case tc.want != "" && !strings.Contains(err.Error(), `rule "R"`):
				t.Fatalf("error does not name the rule:\n%v", err)
			}
		})
	}
}

func FuzzLoad(f *testing.F) {
	seed, err := os.ReadFile("testdata/rules.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(seed))
	f.Add(validBase)
	f.Add("rules:\n  - name: A\n    condition: {outside: [1, 2]}\n")
	f.Add("rules: [{name: N, metric: event_count, no_data: 5m}]\n")
	f.Add("---\n---\n")
	f.Add("&a [*a]")
	f.Add("rules:\n  - annotations: {summary: '{{.Model}}'}\n")
	f.Fuzz(func(t *testing.T, s string) {
		// text/template has no step limit: turn a runaway annotation into a
		// crash that the fuzzer records, instead of a silent stall.
		wd := time.AfterFunc(5*time.Second, func() { panic(fmt.Sprintf("Load+Validate took over 5s on %q", s)) })
		defer wd.Stop()
		cfg, err := Load(strings.NewReader(s))
		if err != nil {
			return
		}
		if err := cfg.Validate(nil); err != nil {
			return
		}
		NewEvaluator(cfg, nil, nil)
	})
}
