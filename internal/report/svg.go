package report

import (
	"fmt"
	"html/template"
	"math"
	"strconv"
	"strings"
	"time"
)

// The charts are SVG drawn here, on the server: no script draws them, so a
// report opens in any browser, prints, and is the same file in ten years.
// Only the distribution chart's current bars are moved by the page's small
// script when another window is chosen.

const (
	chartW, chartH         = 760, 210
	padL, padR, padT, padB = 56, 16, 14, 34
	plotW, plotH           = chartW - padL - padR, chartH - padT - padB
	maxTicks               = 5
	seriesClasses          = 6 // s0..s5 in the style sheet
)

// series is one line of a chart.
type series struct {
	Name   string
	Values []Num
	Class  string // CSS class of the line (s0.., thr)
	Dashed bool
}

// lineChart describes a time-series chart.
type lineChart struct {
	Kind   string // data-chart attribute: what the chart shows
	Title  string
	Unit   string
	X      []time.Time
	Series []series
	// Marks flags points of the first series to circle (drifted buckets),
	// with Tips their tooltips.
	Marks []bool
	Tips  []string
	// YMin and YMax fix the axis when set (NaN: from the data).
	YMin, YMax float64
	Log        bool // p-values: a log axis from 1e-6 to 1
}

func newLineChart(kind, title string, x []time.Time) *lineChart {
	return &lineChart{Kind: kind, Title: title, X: x, YMin: math.NaN(), YMax: math.NaN()}
}

func (c *lineChart) add(name, class string, v []Num, dashed bool) *lineChart {
	c.Series = append(c.Series, series{Name: name, Values: v, Class: class, Dashed: dashed})
	return c
}

func (c *lineChart) svg() template.HTML {
	var b strings.Builder
	lo, hi := c.YMin, c.YMax
	if math.IsNaN(lo) || math.IsNaN(hi) {
		dlo, dhi := math.Inf(1), math.Inf(-1)
		for _, s := range c.Series {
			for _, v := range s.Values {
				if v.Valid() {
					dlo, dhi = math.Min(dlo, float64(v)), math.Max(dhi, float64(v))
				}
			}
		}
		if math.IsInf(dlo, 1) {
			dlo, dhi = 0, 1
		}
		if math.IsNaN(lo) {
			lo = math.Min(dlo, 0)
		}
		if math.IsNaN(hi) {
			hi = dhi
		}
	}
	if c.Log {
		lo, hi = -6, 0
	}
	if hi <= lo {
		hi = lo + 1
	}
	ticks := niceTicks(lo, hi)
	if !c.Log {
		lo, hi = math.Min(lo, ticks[0]), math.Max(hi, ticks[len(ticks)-1])
	}
	n := len(c.X)
	xOf := func(i int) float64 {
		if n <= 1 {
			return padL + plotW/2
		}
		return padL + float64(i)*plotW/float64(n-1)
	}
	yOf := func(v float64) float64 {
		if c.Log {
			v = math.Log10(math.Max(v, 1e-6))
		}
		return padT + plotH - (v-lo)/(hi-lo)*plotH
	}
	fmt.Fprintf(&b, `<svg class="chart" data-chart="%s" viewBox="0 0 %d %d" role="img" aria-label="%s">`, c.Kind, chartW, chartH, template.HTMLEscapeString(c.Title))
	fmt.Fprintf(&b, `<title>%s</title>`, template.HTMLEscapeString(c.Title))
	// Grid and y axis.
	if c.Log {
		ticks = []float64{-6, -4, -2, 0}
	}
	for _, t := range ticks {
		y := yOf(t)
		if c.Log {
			y = padT + plotH - (t-lo)/(hi-lo)*plotH
		}
		label := fmtTick(t)
		if c.Log {
			label = "1e" + strconv.Itoa(int(t))
			if t == 0 {
				label = "1"
			}
		}
		fmt.Fprintf(&b, `<line class="grid" x1="%d" x2="%d" y1="%.1f" y2="%.1f"/><text class="tick" x="%d" y="%.1f" text-anchor="end">%s%s</text>`,
			padL, padL+plotW, y, y, padL-6, y+4, label, c.Unit)
	}
	// X axis: a few time labels.
	fmt.Fprintf(&b, `<line class="axis" x1="%d" x2="%d" y1="%d" y2="%d"/>`, padL, padL+plotW, padT+plotH, padT+plotH)
	ticks2 := xTicks(n)
	for k, i := range ticks2 {
		anchor := "middle" // the outer labels stay inside the chart
		if k == len(ticks2)-1 && len(ticks2) > 1 {
			anchor = "end"
		}
		fmt.Fprintf(&b, `<text class="tick" x="%.1f" y="%d" text-anchor="%s">%s</text>`, xOf(i), chartH-padB+16, anchor, timeLabel(c.X, i))
	}
	// Lines, broken at missing values.
	for si, s := range c.Series {
		cls := s.Class
		if cls == "" {
			cls = "s" + strconv.Itoa(si%seriesClasses)
		}
		dash := ""
		if s.Dashed {
			dash = ` stroke-dasharray="5 4"`
		}
		var pts [][2]float64
		flush := func() {
			switch len(pts) {
			case 0:
			case 1:
				fmt.Fprintf(&b, `<circle class="line %s" cx="%.1f" cy="%.1f" r="2"/>`, cls, pts[0][0], pts[0][1])
			default:
				fmt.Fprintf(&b, `<polyline class="line %s"%s points="%s"/>`, cls, dash, points(pts))
			}
			pts = pts[:0]
		}
		for i, v := range s.Values {
			if !v.Valid() || i >= n {
				flush()
				continue
			}
			pts = append(pts, [2]float64{xOf(i), yOf(float64(v))})
		}
		flush()
	}
	// Marks on the first series.
	if len(c.Series) > 0 {
		for i, m := range c.Marks {
			v := c.Series[0].Values[i]
			if !m || !v.Valid() {
				continue
			}
			tip := ""
			if i < len(c.Tips) {
				tip = c.Tips[i]
			}
			fmt.Fprintf(&b, `<circle class="mark" cx="%.1f" cy="%.1f" r="3.5"><title>%s</title></circle>`, xOf(i), yOf(float64(v)), template.HTMLEscapeString(tip))
		}
	}
	// Legend.
	x := padL + 4
	for si, s := range c.Series {
		cls := s.Class
		if cls == "" {
			cls = "s" + strconv.Itoa(si%seriesClasses)
		}
		fmt.Fprintf(&b, `<line class="line %s" x1="%d" x2="%d" y1="%d" y2="%d"/><text class="legend" x="%d" y="%d">%s</text>`,
			cls, x, x+14, 10, 10, x+18, 14, template.HTMLEscapeString(s.Name))
		x += 26 + 7*len(s.Name)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// points formats a polyline's points, leaving out the inner points of
// horizontal runs (a flat line of 168 points is two).
func points(pts [][2]float64) string {
	var b strings.Builder
	for i, p := range pts {
		if i > 0 && i < len(pts)-1 && fmt.Sprintf("%.1f", pts[i-1][1]) == fmt.Sprintf("%.1f", p[1]) && fmt.Sprintf("%.1f", pts[i+1][1]) == fmt.Sprintf("%.1f", p[1]) {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%.1f,%.1f", p[0], p[1])
	}
	return b.String()
}

// niceTicks returns up to maxTicks+1 round values covering [lo, hi].
func niceTicks(lo, hi float64) []float64 {
	span := hi - lo
	step := math.Pow(10, math.Floor(math.Log10(span/maxTicks)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if span/(step*m) <= maxTicks {
			step *= m
			break
		}
	}
	var out []float64
	for t := math.Floor(lo/step) * step; t <= hi+step/2; t += step {
		out = append(out, math.Round(t/step)*step)
		if len(out) > maxTicks+2 {
			break
		}
	}
	return out
}

func fmtTick(v float64) string {
	if v == 0 {
		return "0"
	}
	a := math.Abs(v)
	switch {
	case a >= 1e6:
		return strconv.FormatFloat(v/1e6, 'g', 3, 64) + "M"
	case a >= 1e4:
		return strconv.FormatFloat(v/1e3, 'g', 3, 64) + "k"
	case a >= 1:
		return strconv.FormatFloat(v, 'f', -1, 64) // ticks are round: 1500, not 1.5e+03
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

func xTicks(n int) []int {
	if n == 0 {
		return nil
	}
	if n <= 6 {
		out := make([]int, n)
		for i := range out {
			out[i] = i
		}
		return out
	}
	var out []int
	for k := 0; k < 6; k++ {
		out = append(out, k*(n-1)/5)
	}
	return out
}

// timeLabel shows a bucket start: the date when the range spans days.
func timeLabel(x []time.Time, i int) string {
	t := x[i]
	if len(x) > 1 && x[len(x)-1].Sub(x[0]) >= 36*time.Hour {
		return t.Format("Jan 2 15:04")
	}
	return t.Format("15:04")
}

// barChart is the reference and a window's distribution of a feature, as
// shares, with new categories marked.
type barChart struct {
	Feature string
	Bins    []string
	New     []bool
	Ref     []uint64
	Cur     []uint64 // nil: the window has none
}

func shares(c []uint64) []float64 {
	var t uint64
	for _, v := range c {
		t += v
	}
	out := make([]float64, len(c))
	for i, v := range c {
		if t > 0 {
			out[i] = float64(v) / float64(t)
		}
	}
	return out
}

func (c *barChart) svg() template.HTML {
	var b strings.Builder
	n := len(c.Bins)
	h := 230
	pb := 70
	ph := h - padT - pb
	rs, cs := shares(c.Ref), shares(c.Cur)
	top := 0.0
	for i := range rs {
		top = math.Max(top, rs[i])
		if i < len(cs) {
			top = math.Max(top, cs[i])
		}
	}
	if top == 0 {
		top = 1
	}
	top = math.Min(1, math.Ceil(top*10+0.5)/10)
	fmt.Fprintf(&b, `<svg class="chart bars" data-chart="distribution" data-feature="%s" data-top="%g" viewBox="0 0 %d %d" role="img" aria-label="distribution of %s">`,
		template.HTMLEscapeString(c.Feature), top, chartW, h, template.HTMLEscapeString(c.Feature))
	yOf := func(v float64) float64 { return float64(padT) + float64(ph) - v/top*float64(ph) }
	for _, t := range []float64{0, top / 2, top} {
		fmt.Fprintf(&b, `<line class="grid" x1="%d" x2="%d" y1="%.1f" y2="%.1f"/><text class="tick" x="%d" y="%.1f" text-anchor="end">%s%%</text>`,
			padL, padL+plotW, yOf(t), yOf(t), padL-6, yOf(t)+4, strconv.FormatFloat(t*100, 'g', 3, 64))
	}
	if n == 0 {
		b.WriteString(`</svg>`)
		return template.HTML(b.String())
	}
	slot := float64(plotW) / float64(n)
	bw := math.Max(1, slot*0.38)
	for i := 0; i < n; i++ {
		x := float64(padL) + float64(i)*slot + slot*0.1
		fmt.Fprintf(&b, `<rect class="ref" x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>reference %s: %.2f%%</title></rect>`,
			x, yOf(rs[i]), bw, float64(padT+ph)-yOf(rs[i]), template.HTMLEscapeString(c.Bins[i]), rs[i]*100)
		cv := 0.0
		if i < len(cs) {
			cv = cs[i]
		}
		cls := "cur"
		if c.New != nil && c.New[i] {
			cls = "cur new"
		}
		fmt.Fprintf(&b, `<rect class="%s" data-bin="%d" x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>current %s: %.2f%%</title></rect>`,
			cls, i, x+bw, yOf(cv), bw, float64(padT+ph)-yOf(cv), template.HTMLEscapeString(c.Bins[i]), cv*100)
		label := c.Bins[i]
		if len(label) > 18 {
			label = label[:17] + "…"
		}
		if c.New != nil && c.New[i] {
			label = "★ " + label
		}
		lx := x + bw
		fmt.Fprintf(&b, `<text class="tick bin" x="%.1f" y="%d" text-anchor="end" transform="rotate(-35 %.1f %d)">%s</text>`,
			lx, padT+ph+14, lx, padT+ph+14, template.HTMLEscapeString(label))
	}
	fmt.Fprintf(&b, `<rect class="ref" x="%d" y="%d" width="10" height="10"/><text class="legend" x="%d" y="%d">reference</text>`, padL+plotW-190, padT, padL+plotW-176, padT+9)
	fmt.Fprintf(&b, `<rect class="cur" x="%d" y="%d" width="10" height="10"/><text class="legend" x="%d" y="%d">chosen window</text>`, padL+plotW-100, padT, padL+plotW-86, padT+9)
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// timeline draws the alert series' episodes over [from, to).
func timeline(alerts []AlertSeries, from, to time.Time) template.HTML {
	var b strings.Builder
	row := 22
	h := padT + row*max(len(alerts), 1) + 30
	left := 220
	w := chartW - left - padR
	xOf := func(t time.Time) float64 {
		f := float64(t.Sub(from)) / float64(to.Sub(from))
		return float64(left) + math.Max(0, math.Min(1, f))*float64(w)
	}
	fmt.Fprintf(&b, `<svg class="chart" data-chart="alerts" viewBox="0 0 %d %d" role="img" aria-label="alert timeline">`, chartW, h)
	for i, a := range alerts {
		y := padT + i*row
		name := a.Rule
		if a.Feature != "" {
			name += " · " + a.Feature
		}
		if a.Segment != "" {
			name += " · " + a.Segment
		}
		fmt.Fprintf(&b, `<text class="legend" x="%d" y="%d" text-anchor="end">%s</text><line class="grid" x1="%d" x2="%d" y1="%d" y2="%d"/>`,
			left-8, y+14, template.HTMLEscapeString(name), left, left+w, y+10, y+10)
		for _, e := range a.Episodes {
			end, cls, state := e.End, "firing", "firing since "+e.Start.Format("2006-01-02 15:04:05")
			if end.IsZero() {
				end = to
			} else {
				cls, state = "resolved", "fired "+e.Start.Format("2006-01-02 15:04:05")+", resolved "+e.End.Format("15:04:05")
			}
			x0, x1 := xOf(e.Start), xOf(end)
			fmt.Fprintf(&b, `<rect class="episode %s" x="%.1f" y="%d" width="%.1f" height="14" rx="3"><title>%s: %s</title></rect>`,
				cls, x0, y+3, math.Max(x1-x0, 3), template.HTMLEscapeString(state), template.HTMLEscapeString(e.Summary))
			if !e.End.IsZero() {
				fmt.Fprintf(&b, `<circle class="resolved-mark" cx="%.1f" cy="%d" r="4"/>`, x1, y+10)
			}
		}
	}
	y := padT + row*max(len(alerts), 1) + 14
	for k := 0; k <= 4; k++ {
		t := from.Add(time.Duration(k) * to.Sub(from) / 4)
		label := t.Format("15:04")
		if to.Sub(from) >= 36*time.Hour {
			label = t.Format("Jan 2 15:04")
		}
		fmt.Fprintf(&b, `<text class="tick" x="%.1f" y="%d" text-anchor="middle">%s</text>`, xOf(t), y, label)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// sparkline is a small score line with its threshold.
func sparkline(score, threshold []Num, drifted []bool, log bool) template.HTML {
	var b strings.Builder
	w, h := 160.0, 28.0
	n := len(score)
	lo, hi := 0.0, 0.0
	for _, v := range append(append([]Num(nil), score...), threshold...) {
		if v.Valid() {
			hi = math.Max(hi, float64(v))
		}
	}
	if log {
		lo, hi = -6, 0
	}
	if hi <= lo {
		hi = lo + 1
	}
	yOf := func(v float64) float64 {
		if log {
			v = math.Log10(math.Max(v, 1e-6))
		}
		return h - 2 - (v-lo)/(hi-lo)*(h-4)
	}
	xOf := func(i int) float64 {
		if n <= 1 {
			return w / 2
		}
		return float64(i) * w / float64(n-1)
	}
	fmt.Fprintf(&b, `<svg class="spark" data-chart="sparkline" viewBox="0 0 %g %g" width="%g" height="%g">`, w, h, w, h)
	line := func(vals []Num, cls string) {
		var pts [][2]float64
		for i, v := range vals {
			if v.Valid() {
				pts = append(pts, [2]float64{xOf(i), yOf(float64(v))})
			}
		}
		if len(pts) > 1 {
			fmt.Fprintf(&b, `<polyline class="line %s" points="%s"/>`, cls, points(pts))
		}
	}
	line(threshold, "thr")
	line(score, "s0")
	for i, d := range drifted {
		if d && score[i].Valid() {
			fmt.Fprintf(&b, `<circle class="mark" cx="%.1f" cy="%.1f" r="2"/>`, xOf(i), yOf(float64(score[i])))
		}
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}
