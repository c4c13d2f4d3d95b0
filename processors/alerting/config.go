package alerting

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
	"text/template"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/vigil-ml/vigil/internal/secret"
)

// Receiver types.
const (
	TypeWebhook      = "webhook"
	TypeAlertmanager = "alertmanager"
	TypeSlack        = "slack"
	TypePagerDuty    = "pagerduty"
)

// Severities.
const (
	SeverityCritical = "critical"
	SeverityWarning  = "warning"
	SeverityInfo     = "info"
)

// Change bases.
const (
	AgainstPrevious  = "previous"
	AgainstReference = "reference"
)

// Config is an alert rules file: receivers, rules and defaults. Load fills
// it; Validate checks and compiles it for NewEvaluator.
type Config struct {
	// ReceiverConfigs is the file's "receivers"; the Receivers method
	// builds them.
	ReceiverConfigs []ReceiverConfig `yaml:"receivers"`
	Rules           []Rule           `yaml:"rules"`
	Defaults        Defaults         `yaml:"defaults"`

	compiled []*compiledRule // set by a successful Validate
}

// Defaults apply to every rule that does not set the field.
type Defaults struct {
	Receivers []string `yaml:"receivers"`

	pos positions
}

// ReceiverConfig is one receiver: the union of the sinks/webhook configs,
// field for field. Fields that do not belong to Type are errors.
type ReceiverConfig struct {
	Name string `yaml:"name"` // unique; rules name it
	Type string `yaml:"type"` // webhook, alertmanager, slack or pagerduty
	// URL receives the POST (pagerduty: default sinks/webhook.DefaultPagerDutyURL).
	URL          secret.Secret `yaml:"url"`
	Secret       secret.Secret `yaml:"secret"`        // webhook: the HMAC key
	RoutingKey   secret.Secret `yaml:"routing_key"`   // pagerduty
	Source       string        `yaml:"source"`        // pagerduty; default "vigil/<model>"
	Severity     string        `yaml:"severity"`      // pagerduty: when the alert has no valid severity label
	ExternalURL  string        `yaml:"external_url"`  // alertmanager
	GeneratorURL string        `yaml:"generator_url"` // alertmanager
	GroupBy      []string      `yaml:"group_by"`      // alertmanager; default [model, metric]

	pos positions
}

// Rule is one alert rule as written in the file; zero fields take the
// defaults named in the package doc.
type Rule struct {
	Name      string     `yaml:"name"`
	Metric    string     `yaml:"metric"`
	Models    []string   `yaml:"models"`
	Features  []string   `yaml:"features"`
	Segments  []string   `yaml:"segments"`
	Condition *Condition `yaml:"condition"`
	// For is how many consecutive evaluated windows the condition must hold.
	For int `yaml:"for"`
	// Delay postpones a window's evaluation to WindowEnd + Delay, for
	// metrics whose inputs arrive late (labels).
	Delay time.Duration `yaml:"delay"`
	// NoData makes an event_count rule without condition fire when a
	// model's newest window with events ended more than NoData ago.
	NoData      time.Duration     `yaml:"no_data"`
	Severity    string            `yaml:"severity"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
	Receivers   []string          `yaml:"receivers"`

	pos positions
}

// Condition holds exactly one of its fields.
type Condition struct {
	Above   *float64         `yaml:"above"`   // value > above
	Below   *float64         `yaml:"below"`   // value < below
	Outside []float64        `yaml:"outside"` // [lo, hi]: value < lo or value > hi
	Change  *ChangeCondition `yaml:"change"`
}

// ChangeCondition holds when |value - base| > Above, or when Relative
// |value - base| > Above·|base|.
type ChangeCondition struct {
	Against  string   `yaml:"against"` // previous or reference
	Above    *float64 `yaml:"above"`
	Relative bool     `yaml:"relative"`
}

// positions remembers where a mapping and its keys are in the file, for
// error messages and to tell "for: 0" from an absent for.
type positions struct {
	line int
	keys map[string]int
}

func (p positions) at(key string) int {
	if l, ok := p.keys[key]; ok {
		return l
	}
	return p.line
}

func (p positions) has(key string) bool {
	_, ok := p.keys[key]
	return ok
}

// maxConfigSize bounds what Load reads.
const maxConfigSize = 8 << 20

// yamlTypeNames makes yaml.v3's "field x not found in type alerting.Rule"
// read as the file's vocabulary.
var yamlTypeNames = strings.NewReplacer(
	"type alerting.Rule", "a rule",
	"type alerting.ReceiverConfig", "a receiver",
	"type alerting.Condition", "condition",
	"type alerting.ChangeCondition", "condition.change",
	"type alerting.Defaults", "defaults",
	"type alerting.Config", "the top level",
)

// Load decodes an alert rules file strictly: unknown keys, a second YAML
// document and values of the wrong type are errors naming their line. Load
// applies no defaults and checks nothing else; call Validate.
func Load(r io.Reader) (*Config, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("read alert rules: %w", err)
	}
	if len(data) > maxConfigSize {
		return nil, fmt.Errorf("read alert rules: larger than %d bytes", maxConfigSize)
	}
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("decode alert rules: the file is empty")
		}
		return nil, fmt.Errorf("decode alert rules: %s", yamlTypeNames.Replace(err.Error()))
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, fmt.Errorf("decode alert rules: %w", err)
		}
		return nil, fmt.Errorf("decode alert rules: line %d: a second YAML document (\"---\"); keep all rules in one", next.Line)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("decode alert rules: %w", err)
	}
	c.locate(&root)
	return &c, nil
}

// LoadFile is Load on a file.
func LoadFile(name string) (*Config, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("open alert rules: %w", err)
	}
	defer f.Close()
	c, err := Load(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return c, nil
}

// locate records the lines of receivers, rules, defaults and their keys.
func (c *Config) locate(root *yaml.Node) {
	doc := root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = doc.Content[0]
	}
	if doc.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(doc.Content); i += 2 {
		key, val := doc.Content[i], doc.Content[i+1]
		switch key.Value {
		case "receivers":
			if val.Kind == yaml.SequenceNode {
				for j, item := range val.Content {
					if j < len(c.ReceiverConfigs) {
						c.ReceiverConfigs[j].pos = positionsOf(item)
					}
				}
			}
		case "rules":
			if val.Kind == yaml.SequenceNode {
				for j, item := range val.Content {
					if j < len(c.Rules) {
						c.Rules[j].pos = positionsOf(item)
					}
				}
			}
		case "defaults":
			c.Defaults.pos = positionsOf(val)
		}
	}
}

func positionsOf(n *yaml.Node) positions {
	p := positions{line: n.Line}
	if n.Kind != yaml.MappingNode {
		return p
	}
	p.keys = make(map[string]int, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		p.keys[n.Content[i].Value] = n.Content[i].Line
	}
	return p
}

// problems collects validation errors, one line each:
// "line 12: rule "AmountDrift": metric: ...".
type problems struct{ errs []error }

func (p *problems) add(line int, subject, field, format string, args ...any) {
	var b strings.Builder
	if line > 0 {
		fmt.Fprintf(&b, "line %d: ", line)
	}
	b.WriteString(subject)
	if field != "" {
		b.WriteString(": ")
		b.WriteString(field)
	}
	b.WriteString(": ")
	fmt.Fprintf(&b, format, args...)
	p.errs = append(p.errs, errors.New(b.String()))
}

var (
	ruleNameRE  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	labelNameRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
)

// reservedLabels are set by the evaluator on every alert.
var reservedLabels = []string{"alertname", "severity", "model", "metric", "feature", "segment"}

// Validate checks c against catalog (nil means DefaultCatalog) and reports
// every problem, joined, one per line. On success it compiles the rules
// (defaults applied, globs checked, templates parsed) for NewEvaluator; it
// does not change the exported fields.
func (c *Config) Validate(catalog Catalog) error {
	if catalog == nil {
		catalog = DefaultCatalog()
	}
	c.compiled = nil
	var p problems

	receivers := map[string]int{} // name -> index
	for i := range c.ReceiverConfigs {
		r := &c.ReceiverConfigs[i]
		r.validate(i, receivers, &p)
	}
	for _, name := range c.Defaults.Receivers {
		if _, ok := receivers[name]; !ok {
			p.add(c.Defaults.pos.at("receivers"), "defaults", "receivers", "unknown receiver %q%s", name, knownReceivers(receivers))
		}
	}

	names := map[string]int{}
	compiled := make([]*compiledRule, 0, len(c.Rules))
	for i := range c.Rules {
		if cr := c.compileRule(i, catalog, receivers, names, &p); cr != nil {
			compiled = append(compiled, cr)
		}
	}
	if len(p.errs) > 0 {
		return errors.Join(p.errs...)
	}
	c.compiled = compiled
	return nil
}

func knownReceivers(m map[string]int) string {
	if len(m) == 0 {
		return " (no receivers are configured)"
	}
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	return " (configured: " + strings.Join(names, ", ") + ")"
}

func (r *ReceiverConfig) validate(i int, seen map[string]int, p *problems) {
	subject := fmt.Sprintf("receiver #%d", i+1)
	if r.Name != "" {
		subject = fmt.Sprintf("receiver %q", r.Name)
	}
	switch {
	case r.Name == "":
		p.add(r.pos.line, subject, "name", "is required")
	case seen[r.Name] > 0:
		p.add(r.pos.at("name"), subject, "name", "duplicate of receiver #%d", seen[r.Name])
	default:
		seen[r.Name] = i + 1
	}
	// only reports a field set on a receiver type that does not use it.
	only := func(field string, set bool, types ...string) {
		if set && !slices.Contains(types, r.Type) {
			p.add(r.pos.at(field), subject, field, "only applies to receivers of type %s", strings.Join(types, ", "))
		}
	}
	switch r.Type {
	case TypeWebhook, TypeAlertmanager, TypeSlack:
		if !r.URL.IsSet() {
			p.add(r.pos.at("url"), subject, "url", "is required for type %s", r.Type)
		}
	case TypePagerDuty:
		if !r.RoutingKey.IsSet() {
			p.add(r.pos.at("routing_key"), subject, "routing_key", "is required for type pagerduty (the service's Events API v2 integration key)")
		}
		switch r.Severity {
		case "", "critical", "error", "warning", "info":
		default:
			p.add(r.pos.at("severity"), subject, "severity", "%q is not one of critical, error, warning, info", r.Severity)
		}
	case "":
		p.add(r.pos.line, subject, "type", "is required (webhook, alertmanager, slack or pagerduty)")
		return
	default:
		p.add(r.pos.at("type"), subject, "type", "%q is not webhook, alertmanager, slack or pagerduty", r.Type)
		return
	}
	if r.Type == TypeWebhook && !r.Secret.IsSet() {
		p.add(r.pos.at("secret"), subject, "secret", "is required for type webhook (the HMAC key; generate one with: openssl rand -hex 32)")
	}
	only("secret", r.Secret.IsSet(), TypeWebhook)
	only("routing_key", r.RoutingKey.IsSet(), TypePagerDuty)
	only("source", r.Source != "", TypePagerDuty)
	only("severity", r.Severity != "", TypePagerDuty)
	only("external_url", r.ExternalURL != "", TypeAlertmanager)
	only("generator_url", r.GeneratorURL != "", TypeAlertmanager)
	only("group_by", len(r.GroupBy) > 0, TypeAlertmanager)
}

// condKind is the compiled form of a Condition.
type condKind int

const (
	condNone condKind = iota // no_data rules
	condAbove
	condBelow
	condOutside
	condChangePrevious
	condChangeReference
)

type condition struct {
	kind     condKind
	a, b     float64 // above/below/change threshold in a; outside [a, b]
	relative bool
}

// eval reports whether v (not NaN) meets the condition and the bound it is
// compared with; ok is false when the base is unknown.
func (c condition) eval(v, base float64) (holds bool, threshold float64, ok bool) {
	switch c.kind {
	case condAbove:
		return v > c.a, c.a, true
	case condBelow:
		return v < c.a, c.a, true
	case condOutside:
		switch {
		case v < c.a:
			return true, c.a, true
		case v > c.b:
			return true, c.b, true
		case v-c.a < c.b-v:
			return false, c.a, true
		default:
			return false, c.b, true
		}
	case condChangePrevious, condChangeReference:
		if math.IsNaN(base) {
			return false, math.NaN(), false
		}
		limit := c.a
		if c.relative {
			limit *= math.Abs(base)
		}
		delta := v - base
		threshold = base + limit
		if delta < 0 {
			threshold = base - limit
		}
		return math.Abs(delta) > limit, threshold, true
	default:
		panic("BUG: evaluating a rule without condition")
	}
}

// compiledRule is a validated Rule with its defaults applied.
type compiledRule struct {
	name, metric string
	models       []string
	features     []string
	segments     []string
	cond         condition
	forWindows   int
	delay        time.Duration
	noData       time.Duration
	severity     string
	labels       map[string]string
	annotations  map[string]*template.Template
	receivers    []string
}

// matches reports whether the rule covers the series.
func (r *compiledRule) matches(metric, model, feature, segment string) bool {
	return metric == r.metric && matchAny(r.models, model) && matchAny(r.features, feature) && matchAny(r.segments, segment)
}

func matchAny(patterns []string, s string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, s); ok {
			return true
		}
	}
	return false
}

func (c *Config) compileRule(i int, catalog Catalog, receivers map[string]int, names map[string]int, p *problems) *compiledRule {
	r := &c.Rules[i]
	subject := fmt.Sprintf("rule #%d", i+1)
	if r.Name != "" {
		subject = fmt.Sprintf("rule %q", r.Name)
	}
	before := len(p.errs)
	bad := func(field, format string, args ...any) { p.add(r.pos.at(field), subject, field, format, args...) }

	switch {
	case r.Name == "":
		p.add(r.pos.line, subject, "name", "is required")
	case !ruleNameRE.MatchString(r.Name):
		bad("name", "%q must match [A-Za-z_][A-Za-z0-9_]*", r.Name)
	case names[r.Name] > 0:
		bad("name", "duplicate of rule #%d", names[r.Name])
	default:
		names[r.Name] = i + 1
	}

	cr := &compiledRule{
		name: r.Name, metric: r.Metric, delay: r.Delay, noData: r.NoData,
		forWindows: r.For, severity: r.Severity,
		models: slices.Clone(r.Models), features: slices.Clone(r.Features), segments: slices.Clone(r.Segments),
	}
	info, known := catalog[r.Metric]
	switch {
	case r.Metric == "":
		p.add(r.pos.line, subject, "metric", "is required")
	case !known:
		bad("metric", "%q is not a known metric (known: %s)", r.Metric, strings.Join(catalog.Names(), ", "))
	}

	checkGlobs := func(field string, patterns []string, allowEmpty bool) {
		for _, pat := range patterns {
			if pat == "" && !allowEmpty {
				bad(field, "an empty pattern matches nothing")
			} else if _, err := path.Match(pat, ""); err != nil {
				bad(field, "%q is not a valid glob (path.Match syntax)", pat)
			}
		}
	}
	if len(cr.models) == 0 {
		cr.models = []string{"*"}
	}
	checkGlobs("models", r.Models, false)
	if known && info.Level == ModelLevel {
		if len(r.Features) > 0 {
			bad("features", "metric %q is model-level, it has no features; remove features", r.Metric)
		}
		cr.features = []string{""}
	} else {
		if len(cr.features) == 0 {
			cr.features = []string{"*"}
		}
		checkGlobs("features", r.Features, false)
	}
	if len(cr.segments) == 0 {
		cr.segments = []string{""}
	}
	checkGlobs("segments", r.Segments, true)

	switch {
	case r.For < 0, r.For == 0 && r.pos.has("for"):
		bad("for", "must be at least 1, got %d", r.For)
	case r.For == 0:
		cr.forWindows = 1
	}
	if r.Delay < 0 {
		bad("delay", "must not be negative, got %s", r.Delay)
	}

	if r.NoData != 0 || r.pos.has("no_data") {
		if r.NoData <= 0 {
			bad("no_data", "must be positive, got %s", r.NoData)
		}
		if r.Metric != "event_count" {
			bad("no_data", "only applies to metric event_count, not %q", r.Metric)
		}
		if r.Condition != nil {
			bad("condition", "a no_data rule has no condition; write a separate rule")
		}
		if r.For != 0 {
			bad("for", "does not apply to a no_data rule")
		}
		if r.Delay != 0 {
			bad("delay", "does not apply to a no_data rule")
		}
		if len(r.Segments) > 0 && !slices.Equal(r.Segments, []string{""}) {
			bad("segments", "a no_data rule watches the whole traffic; remove segments")
		}
		cr.segments = []string{""}
	} else {
		cr.cond = compileCondition(r.Condition, bad)
	}

	switch r.Severity {
	case "":
		cr.severity = SeverityWarning
	case SeverityCritical, SeverityWarning, SeverityInfo:
	default:
		bad("severity", "%q is not critical, warning or info", r.Severity)
	}

	cr.labels = make(map[string]string, len(r.Labels))
	for _, k := range slices.Sorted(maps.Keys(r.Labels)) {
		switch {
		case !labelNameRE.MatchString(k):
			bad("labels", "label name %q must match [a-zA-Z_][a-zA-Z0-9_]*", k)
		case slices.Contains(reservedLabels, k):
			bad("labels", "%q is set by Vigil on every alert; use another name", k)
		default:
			cr.labels[k] = r.Labels[k]
		}
	}

	// The labels every alert of the rule carries, for trying the templates.
	sampleLabels := maps.Clone(cr.labels)
	sampleLabels["alertname"], sampleLabels["severity"] = r.Name, cr.severity
	sampleLabels["model"], sampleLabels["metric"] = "model", r.Metric
	if cr.features[0] != "" {
		sampleLabels["feature"] = "feature"
	}
	if !slices.Contains(cr.segments, "") {
		sampleLabels["segment"] = "region=eu"
	}
	cr.annotations = make(map[string]*template.Template, len(r.Annotations)+1)
	for _, k := range slices.Sorted(maps.Keys(r.Annotations)) {
		if !labelNameRE.MatchString(k) {
			bad("annotations", "annotation name %q must match [a-zA-Z_][a-zA-Z0-9_]*", k)
			continue
		}
		t, err := parseAnnotation(k, r.Annotations[k], sampleLabels)
		if err != nil {
			bad("annotations."+k, "%v", err)
			continue
		}
		cr.annotations[k] = t
	}
	if _, ok := r.Annotations["summary"]; !ok {
		summary := DefaultSummary
		if r.NoData != 0 {
			summary = NoDataSummary
		}
		t, err := parseAnnotation("summary", summary, sampleLabels)
		if err != nil {
			panic("BUG: default summary does not parse: " + err.Error())
		}
		cr.annotations["summary"] = t
	}

	cr.receivers = r.Receivers
	if len(cr.receivers) == 0 {
		cr.receivers = c.Defaults.Receivers
	}
	if len(cr.receivers) == 0 {
		p.add(r.pos.line, subject, "receivers", "at least one is required (or set defaults.receivers)")
	}
	for _, name := range r.Receivers {
		if _, ok := receivers[name]; !ok {
			bad("receivers", "unknown receiver %q%s", name, knownReceivers(receivers))
		}
	}
	cr.receivers = slices.Clone(cr.receivers)

	if len(p.errs) > before {
		return nil
	}
	return cr
}

func compileCondition(c *Condition, bad func(field, format string, args ...any)) condition {
	if c == nil {
		bad("condition", "is required: one of above, below, outside, change (or no_data for metric event_count)")
		return condition{}
	}
	var given []string
	if c.Above != nil {
		given = append(given, "above")
	}
	if c.Below != nil {
		given = append(given, "below")
	}
	if c.Outside != nil {
		given = append(given, "outside")
	}
	if c.Change != nil {
		given = append(given, "change")
	}
	if len(given) != 1 {
		if len(given) == 0 {
			bad("condition", "give one of above, below, outside, change")
		} else {
			bad("condition", "give exactly one of above, below, outside, change, not %s", strings.Join(given, " and "))
		}
		return condition{}
	}
	finite := func(field string, v float64) bool {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			bad(field, "must be a finite number, got %v", v)
			return false
		}
		return true
	}
	switch {
	case c.Above != nil:
		finite("condition.above", *c.Above)
		return condition{kind: condAbove, a: *c.Above}
	case c.Below != nil:
		finite("condition.below", *c.Below)
		return condition{kind: condBelow, a: *c.Below}
	case c.Outside != nil:
		if len(c.Outside) != 2 {
			bad("condition.outside", "want [low, high], got %d values", len(c.Outside))
			return condition{}
		}
		lo, hi := c.Outside[0], c.Outside[1]
		if finite("condition.outside", lo) && finite("condition.outside", hi) && lo >= hi {
			bad("condition.outside", "low %v must be below high %v", lo, hi)
		}
		return condition{kind: condOutside, a: lo, b: hi}
	default:
		ch := c.Change
		out := condition{kind: condChangePrevious, relative: ch.Relative}
		switch ch.Against {
		case AgainstPrevious:
		case AgainstReference:
			out.kind = condChangeReference
		case "":
			bad("condition.change.against", "is required: previous or reference")
		default:
			bad("condition.change.against", "%q is not previous or reference", ch.Against)
		}
		switch {
		case ch.Above == nil:
			bad("condition.change.above", "is required: the change that fires")
		case finite("condition.change.above", *ch.Above) && *ch.Above < 0:
			bad("condition.change.above", "must not be negative, got %v", *ch.Above)
		default:
			out.a = *ch.Above
		}
		return out
	}
}
