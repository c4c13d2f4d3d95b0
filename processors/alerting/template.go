package alerting

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"text/template"
	"text/template/parse"
	"time"
)

// TemplateData is what annotation templates see, for example
// {{.Model}} or {{printf "%.3f" .Value}}.
type TemplateData struct {
	Rule     string
	Status   string // "firing" or "resolved"
	Severity string
	Model    string
	Metric   string
	Feature  string // empty for model-level metrics
	Segment  string // empty for the whole traffic
	Value    float64
	// Threshold is the bound Value crossed, in the metric's units (see the
	// package doc for change rules).
	Threshold float64
	// Base is what a change rule compared with (previous value or
	// reference); NaN for other rules.
	Base float64
	// Window is the window's length ("5m"); the no_data duration for
	// no_data rules.
	Window      string
	WindowStart time.Time // zero for no_data rules
	WindowEnd   time.Time // zero for no_data rules
	// LastSeen is the newest window end with events (no_data rules only).
	LastSeen time.Time
	Labels   map[string]string
}

// Summaries used when a rule's annotations have no "summary".
const (
	DefaultSummary = `{{.Model}}: {{.Metric}}{{with .Feature}} of {{.}}{{end}}{{with .Segment}} [{{.}}]{{end}} is {{printf "%.4g" .Value}} (threshold {{printf "%.4g" .Threshold}}, window {{.Window}})`
	NoDataSummary  = `{{.Model}}: no events since {{.LastSeen.UTC.Format "2006-01-02T15:04:05Z07:00"}} (no_data {{.Window}})`
)

// maxAnnotation bounds a rendered annotation, so that a runaway template
// fails instead of filling memory.
const maxAnnotation = 16 << 10

var errAnnotationTooLong = fmt.Errorf("rendered text exceeds %d bytes", maxAnnotation)

type limitedBuilder struct{ strings.Builder }

func (b *limitedBuilder) Write(p []byte) (int, error) {
	if b.Len()+len(p) > maxAnnotation {
		return 0, errAnnotationTooLong
	}
	return b.Builder.Write(p)
}

// parseAnnotation parses text and tries it on sample data with the labels
// every alert of the rule has, so that unknown fields, missing labels and
// wrong argument types fail at validation.
func parseAnnotation(key, text string, labels map[string]string) (*template.Template, error) {
	t, err := template.New(key).Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, err
	}
	if len(t.Templates()) > 1 {
		return nil, errors.New("{{define}} and {{block}} are not supported in annotations")
	}
	if t.Tree != nil && t.Tree.Root != nil {
		if err := checkLoops(t.Tree.Root, 1); err != nil {
			return nil, err
		}
	}
	sample := TemplateData{
		Rule: "SampleRule", Status: "firing", Severity: "warning",
		Model: "model", Metric: "psi", Feature: "feature", Segment: "region=eu",
		Value: 0.5, Threshold: 0.2, Base: math.NaN(), Window: "1h",
		WindowStart: time.Date(2025, 3, 1, 11, 0, 0, 0, time.UTC),
		WindowEnd:   time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC),
		LastSeen:    time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC),
		Labels:      labels,
	}
	if _, err := render(t, &sample); err != nil {
		return nil, err
	}
	return t, nil
}

// maxLoopIterations bounds what range over integer literals may iterate
// (nested ranges multiply): text/template has no step limit, and an
// annotation has no business looping much.
const maxLoopIterations = 10000

// checkLoops rejects {{template}} and ranges over integers whose iterations
// multiply beyond maxLoopIterations.
func checkLoops(n parse.Node, iterations int64) error {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return nil
		}
		for _, c := range n.Nodes {
			if err := checkLoops(c, iterations); err != nil {
				return err
			}
		}
	case *parse.TemplateNode:
		return errors.New("{{template}} is not supported in annotations")
	case *parse.IfNode:
		return checkBranch(&n.BranchNode, iterations)
	case *parse.WithNode:
		return checkBranch(&n.BranchNode, iterations)
	case *parse.RangeNode:
		inner := iterations
		if cmds := n.Pipe.Cmds; len(cmds) == 1 && len(cmds[0].Args) == 1 {
			if num, ok := cmds[0].Args[0].(*parse.NumberNode); ok && num.IsInt {
				if num.Int64 > maxLoopIterations || inner*max(num.Int64, 1) > maxLoopIterations {
					return fmt.Errorf("range over %s iterates more than %d times", num.Text, maxLoopIterations)
				}
				inner *= max(num.Int64, 1)
			}
		}
		if err := checkLoops(n.List, inner); err != nil {
			return err
		}
		return checkLoops(n.ElseList, iterations)
	}
	return nil
}

func checkBranch(b *parse.BranchNode, iterations int64) error {
	if err := checkLoops(b.List, iterations); err != nil {
		return err
	}
	return checkLoops(b.ElseList, iterations)
}

func render(t *template.Template, d *TemplateData) (string, error) {
	var b limitedBuilder
	if err := t.Execute(&b, d); err != nil {
		if errors.Is(err, errAnnotationTooLong) {
			return "", errAnnotationTooLong
		}
		return "", err
	}
	return b.String(), nil
}

// compactDuration prints 5m instead of 5m0s and 1h instead of 1h0m0s.
func compactDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
