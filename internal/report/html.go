package report

import (
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-ml/vigil/processors/drift"
)

//go:embed assets/page.html assets/report.css assets/report.js
var assets embed.FS

var (
	pageCSS, pageJS string
	pages           *template.Template
)

func init() {
	css, err := assets.ReadFile("assets/report.css")
	if err != nil {
		panic("BUG: report assets: " + err.Error())
	}
	js, err := assets.ReadFile("assets/report.js")
	if err != nil {
		panic("BUG: report assets: " + err.Error())
	}
	pageCSS, pageJS = string(css), string(js)
	pages = template.Must(template.New("").Funcs(template.FuncMap{
		"join":    strings.Join,
		"fmtTime": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04") },
		"fmtRFC":  func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"num":     fmtNum,
	}).ParseFS(assets, "assets/page.html"))
}

func fmtNum(n Num) string {
	if !n.Valid() {
		return "-"
	}
	return strconv.FormatFloat(float64(n), 'g', 4, 64)
}

// page is what the templates render: a report file, or a page of the UI.
type page struct {
	Kind  string // report, models, model, feature
	Title string
	Live  bool
	Base  string // the UI's root URL (live pages)
	R     *Report
	By    string
	// Segment is the segment a feature page is filtered by.
	Segment                 string
	ModelURL, FeatureURLAll string
	SegmentLinks            []link
	Models                  []modelRow
	Totals                  totals
	Charts                  struct{ Events, Latency, Share, Alerts template.HTML }
	Features                []featureView
	Perf                    *perfView
	Segments                []segmentView
	CSS                     template.CSS
	JS                      template.JS
	Data                    template.JS
}

type link struct{ Name, URL string }

type modelRow struct {
	ModelVersion
	URL string
}

type totals struct {
	Events, Late                    uint64
	DriftedBuckets, DriftedFeatures int
	Firing                          int
}

type option struct {
	Index    int
	Label    string
	Selected bool
}

type featureView struct {
	F                                     *Feature
	Anchor, Link                          string
	PValue                                bool
	LastScore, LastThreshold, LastMissing string
	Spark, Drift, Dist, Quality           template.HTML
	Options                               []option
}

type perfView struct {
	P                        *Performance
	Metrics, Coverage, Delay template.HTML
	MatrixWindow             string
	Matrix                   []matrixRow
}

type matrixRow struct {
	Class string
	Cells []struct {
		N     uint64
		Alpha string
	}
}

type segmentView struct {
	S        *Segment
	Share    template.HTML
	Features []struct {
		F     *SegmentFeature
		Link  string
		Spark template.HTML
	}
	Charts []struct {
		Name, Method string
		SVG          template.HTML
	}
}

// Render writes r as one self-contained HTML file: every chart, the data
// behind them (JSON in <script id="vigil-data">), the styles and the small
// script that sorts the tables and moves the distribution charts' window.
func Render(w io.Writer, r *Report) error {
	p, err := newPage("report", r, "", nil)
	if err != nil {
		return err
	}
	p.Title = "Vigil report: " + r.Model
	return pages.ExecuteTemplate(w, "page", p)
}

// newPage builds the views of r. featureLink turns a feature (and a
// segment, "" for all events) into its link; nil links to the report's
// anchors.
func newPage(kind string, r *Report, by string, featureLink func(feature, segment string) string) (*page, error) {
	p := &page{Kind: kind, R: r, By: by, CSS: template.CSS(pageCSS), JS: template.JS(pageJS)}
	if featureLink == nil {
		featureLink = func(f, seg string) string {
			if seg != "" {
				return ""
			}
			return "#" + anchor(f)
		}
	}
	o := &r.Overview
	for i := range r.Windows {
		p.Totals.Events += o.Events[i]
		p.Totals.Late += o.Late[i]
		if o.ShareDrifted[i] {
			p.Totals.DriftedBuckets++
		}
	}
	for _, a := range r.Alerts {
		if a.Status == "firing" {
			p.Totals.Firing++
		}
	}
	ev := make([]Num, len(o.Events))
	late := make([]Num, len(o.Late))
	for i := range ev {
		ev[i], late[i] = Num(o.Events[i]), Num(o.Late[i])
	}
	p.Charts.Events = newLineChart("events", "events per window", r.Windows).add("events", "s0", ev, false).add("late", "s1", late, false).svg()
	p.Charts.Latency = newLineChart("latency", "latency", r.Windows).add("p50", "s0", o.LatencyP50, false).
		add("p95", "s1", o.P95, false).add("p99", "s2", o.P99, false).svg()
	thr := make([]Num, len(r.Windows))
	for i := range thr {
		thr[i] = Num(o.ShareThreshold)
	}
	share := newLineChart("drift-share", "dataset drift share", r.Windows).add("drift share", "s0", o.Share, false).add("threshold", "thr", thr, true)
	share.YMin, share.YMax, share.Marks = 0, 1, o.ShareDrifted
	share.Tips = tips(r.Windows, o.Share, "share")
	p.Charts.Share = share.svg()
	if len(r.Alerts) > 0 {
		p.Charts.Alerts = timeline(r.Alerts, r.Windows[0], r.Ends[len(r.Ends)-1])
	}

	for i := range r.Features {
		f := &r.Features[i]
		if f.DriftedWindows > 0 {
			p.Totals.DriftedFeatures++
		}
		p.Features = append(p.Features, featureViewOf(r, f, featureLink(f.Name, "")))
	}
	if r.Performance != nil {
		p.Perf = perfViewOf(r.Performance)
	}
	for i := range r.Segments {
		p.Segments = append(p.Segments, segmentViewOf(r, &r.Segments[i], featureLink))
	}
	data, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode report data: %w", err)
	}
	p.Data = template.JS(data) // json.Marshal escapes <, > and &: it cannot close the script
	return p, nil
}

func anchor(feature string) string { return "f-" + url.PathEscape(feature) }

func tips(x []time.Time, v []Num, what string) []string {
	out := make([]string, len(x))
	for i := range x {
		out[i] = fmt.Sprintf("%s: %s %s", x[i].Format("2006-01-02 15:04"), what, fmtNum(v[i]))
	}
	return out
}

func last(v []Num) Num {
	for i := len(v) - 1; i >= 0; i-- {
		if v[i].Valid() {
			return v[i]
		}
	}
	return Num(math.NaN())
}

func featureViewOf(r *Report, f *Feature, link string) featureView {
	v := featureView{F: f, Anchor: anchor(f.Name), Link: link, PValue: drift.Method(f.Method).IsPValue()}
	v.LastScore, v.LastThreshold, v.LastMissing = fmtNum(last(f.Score)), fmtNum(last(f.Threshold)), fmtNum(last(f.Missing))
	v.Spark = sparkline(f.Score, f.Threshold, f.Drifted, v.PValue)
	d := newLineChart("drift-score", f.Name+" drift score", r.Windows).add(f.Method, "s0", f.Score, false).add("threshold", "thr", f.Threshold, true)
	d.Marks, d.Tips, d.Log = f.Drifted, tips(r.Windows, f.Score, f.Method), v.PValue
	v.Drift = d.svg()
	qc := newLineChart("quality", f.Name+" data quality", r.Windows).add("missing", "s0", f.Missing, false).add("type mismatch", "s1", f.TypeMismatch, false)
	switch f.Kind {
	case "number":
		qc.add("out of range", "s2", f.OutOfRange, false)
	case "vector": // an embedding's row: no range, no categories
	default:
		qc.add("new categories", "s2", f.NewCategory, false)
	}
	qc.YMin = 0
	v.Quality = qc.svg()
	var cur []uint64
	if f.Chosen >= 0 {
		cur = f.Dist.Cur[f.Chosen]
	}
	bc := barChart{Feature: f.Name, Bins: f.Dist.Bins, New: f.Dist.New, Ref: f.Dist.Ref, Cur: cur}
	v.Dist = bc.svg()
	// The chooser holds the chosen window; the page's script adds the
	// others from the embedded data (168 options x 50 features would be
	// half a megabyte of HTML).
	if i := f.Chosen; i >= 0 {
		v.Options = []option{{Index: i, Label: windowLabel(r.Windows[i], f.Method, f.Score[i], f.Drifted[i]), Selected: true}}
	}
	return v
}

// windowLabel is a window chooser's option; report.js builds the same.
func windowLabel(t time.Time, method string, score Num, drifted bool) string {
	label := t.UTC().Format("2006-01-02 15:04") + " · " + method + " " + fmtNum(score)
	if drifted {
		label += " · drift"
	}
	return label
}

func perfViewOf(p *Performance) *perfView {
	v := &perfView{P: p}
	c := newLineChart("performance", "performance", p.Windows)
	for k, m := range p.Metrics {
		c.add(m, "", p.Values[k], false)
	}
	if p.Task != "regression" {
		c.YMin, c.YMax = 0, 1
	}
	v.Metrics = c.svg()
	cov := newLineChart("label-coverage", "label coverage", p.Windows).add("coverage", "s0", p.Coverage, false)
	cov.YMin = 0
	v.Coverage = cov.svg()
	p50, p95 := make([]Num, len(p.DelayP50)), make([]Num, len(p.DelayP95))
	for i := range p50 {
		p50[i], p95[i] = p.DelayP50[i]/60, p.DelayP95[i]/60
	}
	v.Delay = newLineChart("label-delay", "label delay", p.Windows).add("p50", "s0", p50, false).add("p95", "s1", p95, false).svg()
	if p.Chosen >= 0 && p.Chosen < len(p.Confusion) && p.Confusion[p.Chosen] != nil {
		m := p.Confusion[p.Chosen]
		v.MatrixWindow = p.Windows[p.Chosen].Format("2006-01-02 15:04")
		var top uint64
		for _, row := range m {
			for _, n := range row {
				top = max(top, n)
			}
		}
		for i, row := range m {
			mr := matrixRow{Class: p.Classes[min(i, len(p.Classes)-1)]}
			for _, n := range row {
				a := 0.0
				if top > 0 {
					a = 0.08 + 0.6*float64(n)/float64(top)
				}
				mr.Cells = append(mr.Cells, struct {
					N     uint64
					Alpha string
				}{n, strconv.FormatFloat(a, 'f', 2, 64)})
			}
			v.Matrix = append(v.Matrix, mr)
		}
	}
	return v
}

func segmentViewOf(r *Report, s *Segment, featureLink func(feature, segment string) string) segmentView {
	v := segmentView{S: s}
	thr := make([]Num, len(r.Windows))
	marks := make([]bool, len(r.Windows))
	for i := range thr {
		thr[i] = Num(r.Overview.ShareThreshold)
		marks[i] = s.Share[i].Valid() && float64(s.Share[i]) >= r.Overview.ShareThreshold
	}
	c := newLineChart("segment-share", s.Segment+" drift share", r.Windows).add("drift share", "s0", s.Share, false).add("threshold", "thr", thr, true)
	c.YMin, c.YMax, c.Marks, c.Tips = 0, 1, marks, tips(r.Windows, s.Share, "share")
	v.Share = c.svg()
	for i := range s.Features {
		f := &s.Features[i]
		pv := drift.Method(f.Method).IsPValue()
		v.Features = append(v.Features, struct {
			F     *SegmentFeature
			Link  string
			Spark template.HTML
		}{f, featureLink(f.Name, s.Segment), sparkline(f.Score, f.Threshold, f.Drifted, pv)})
		if f.DriftedWindows > 0 && len(v.Charts) < MaxSegmentCharts {
			d := newLineChart("segment-drift-score", f.Name+" drift score in "+s.Segment, r.Windows).add(f.Method, "s0", f.Score, false).add("threshold", "thr", f.Threshold, true)
			d.Marks, d.Tips, d.Log = f.Drifted, tips(r.Windows, f.Score, f.Method), pv
			v.Charts = append(v.Charts, struct {
				Name, Method string
				SVG          template.HTML
			}{f.Name, f.Method, d.svg()})
		}
	}
	return v
}

func pageCSSValue() template.CSS { return template.CSS(pageCSS) }
func pageJSValue() template.JS   { return template.JS(pageJS) }
