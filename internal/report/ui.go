package report

import (
	"errors"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/vigil-ml/vigil/processors/drift"
)

// DefaultUIRange is the range a UI page shows when its URL names none: the
// day before the model version's last window.
const DefaultUIRange = 24 * time.Hour

// Handler serves the live, read-only UI under prefix (for example "/ui/"):
//
//	{prefix}                               the models with stored windows
//	{prefix}models/{model}                 a model version's page (the report's views)
//	{prefix}models/{model}/features/{name} one feature (segment=key=value filters it)
//
// The query string holds the range and the options (version, from, to as
// RFC 3339, every, by, segment, window), so a URL can be shared; a page
// asked without a range redirects to the URL of its default range (the
// DefaultUIRange before the version's last window). Every page is built
// from the stores at request time through Build. Only GET and HEAD are
// served. allow, when not nil, says which models a request may see (the
// bearer token's models, internal/auth): the others are left out of the
// model list and their pages answer 403.
func Handler(prefix string, s Stores, opts drift.Options, allow func(r *http.Request, model string) bool, log zerolog.Logger) http.Handler {
	if allow == nil {
		allow = func(*http.Request, string) bool { return true }
	}
	u := &ui{prefix: prefix, stores: s, opts: opts, allow: allow, log: log}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+prefix+"{$}", u.models)
	mux.HandleFunc("GET "+prefix+"models/{model}", u.model)
	mux.HandleFunc("GET "+prefix+"models/{model}/features/{feature}", u.feature)
	return mux
}

type ui struct {
	prefix string
	stores Stores
	opts   drift.Options
	allow  func(r *http.Request, model string) bool
	log    zerolog.Logger
}

func (u *ui) models(w http.ResponseWriter, r *http.Request) {
	versions, err := u.stores.Windows.ModelVersions(r.Context())
	if err != nil {
		u.fail(w, r, err)
		return
	}
	p := &page{Kind: "models", Title: "Vigil: models", Live: true, Base: u.prefix, CSS: pageCSSValue(), JS: pageJSValue()}
	for _, v := range versions {
		if !u.allow(r, v.Model) {
			continue
		}
		q := url.Values{"version": {v.Version}}
		p.Models = append(p.Models, modelRow{ModelVersion: v, URL: u.prefix + "models/" + url.PathEscape(v.Model) + "?" + q.Encode()})
	}
	u.write(w, r, p)
}

// query reads a page's query from r, or redirects to the page's default
// range and returns false.
func (u *ui) query(w http.ResponseWriter, r *http.Request) (Query, bool) {
	model := r.PathValue("model")
	if !u.allow(r, model) {
		http.Error(w, "this token may not see model "+model, http.StatusForbidden)
		return Query{}, false
	}
	v := r.URL.Query()
	q := Query{Model: model, Version: v.Get("version"), By: v.Get("by"), Drift: u.opts}
	var err error
	if e := v.Get("every"); e != "" {
		if q.Every, err = time.ParseDuration(e); err != nil || q.Every < 0 {
			http.Error(w, "every: not a duration (e.g. 1h)", http.StatusBadRequest)
			return q, false
		}
	}
	from, to := v.Get("from"), v.Get("to")
	if from == "" || to == "" || q.Version == "" {
		versions, err := u.stores.Windows.ModelVersions(r.Context())
		if err != nil {
			u.fail(w, r, err)
			return q, false
		}
		var mv *ModelVersion
		for i := range versions {
			x := &versions[i]
			if x.Model == model && (q.Version == "" || x.Version == q.Version) && (mv == nil || !x.Last.Before(mv.Last)) {
				mv = x
			}
		}
		if mv == nil {
			http.Error(w, "no stored windows of model "+model, http.StatusNotFound)
			return q, false
		}
		v.Set("version", mv.Version)
		if to == "" {
			v.Set("to", mv.Last.Format(time.RFC3339))
		}
		if from == "" {
			t, err := time.Parse(time.RFC3339, v.Get("to"))
			if err != nil {
				http.Error(w, "to: not an RFC 3339 time", http.StatusBadRequest)
				return q, false
			}
			f := t.Add(-DefaultUIRange)
			if mv.First.After(f) {
				f = mv.First
			}
			v.Set("from", f.Format(time.RFC3339))
		}
		http.Redirect(w, r, r.URL.Path+"?"+v.Encode(), http.StatusFound)
		return q, false
	}
	if q.From, err = time.Parse(time.RFC3339, from); err != nil {
		http.Error(w, "from: not an RFC 3339 time", http.StatusBadRequest)
		return q, false
	}
	if q.To, err = time.Parse(time.RFC3339, to); err != nil {
		http.Error(w, "to: not an RFC 3339 time", http.StatusBadRequest)
		return q, false
	}
	return q, true
}

// links returns the query string pages link with (range and options).
func links(r *http.Request, drop ...string) string {
	v := r.URL.Query()
	for _, k := range append(drop, "window") {
		v.Del(k)
	}
	return v.Encode()
}

func (u *ui) modelURL(model, qs string) string {
	return u.prefix + "models/" + url.PathEscape(model) + "?" + qs
}

func (u *ui) featureURL(model, feature, qs, segment string) string {
	s := u.prefix + "models/" + url.PathEscape(model) + "/features/" + url.PathEscape(feature) + "?" + qs
	if segment != "" {
		s += "&segment=" + url.QueryEscape(segment)
	}
	return s
}

func (u *ui) model(w http.ResponseWriter, r *http.Request) {
	q, ok := u.query(w, r)
	if !ok {
		return
	}
	rep, err := Build(r.Context(), u.stores, q)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	qs := links(r, "segment")
	p, err := newPage("model", rep, q.By, func(f, seg string) string { return u.featureURL(q.Model, f, qs, seg) })
	if err != nil {
		u.fail(w, r, err)
		return
	}
	p.Live, p.Base, p.Title, p.ModelURL = true, u.prefix, "Vigil: "+q.Model, u.modelURL(q.Model, qs)
	u.write(w, r, p)
}

func (u *ui) feature(w http.ResponseWriter, r *http.Request) {
	q, ok := u.query(w, r)
	if !ok {
		return
	}
	name, segment := r.PathValue("feature"), r.URL.Query().Get("segment")
	if segment != "" {
		q.By = strings.SplitN(segment, "=", 2)[0]
	}
	rep, err := Build(r.Context(), u.stores, q)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	qs := links(r, "segment")
	var f *Feature
	for i := range rep.Features {
		if rep.Features[i].Name == name {
			f = &rep.Features[i]
		}
	}
	if f == nil {
		http.Error(w, "model "+q.Model+" has no drift of feature "+name+" in this range", http.StatusNotFound)
		return
	}
	var segLinks []link
	for _, s := range rep.Segments {
		segLinks = append(segLinks, link{Name: s.Segment, URL: u.featureURL(q.Model, name, qs, s.Segment)})
	}
	sort.Slice(segLinks, func(i, j int) bool { return segLinks[i].Name < segLinks[j].Name })
	if segment != "" {
		sf, ok := segmentFeature(rep, segment, name)
		if !ok {
			http.Error(w, "no drift of feature "+name+" in segment "+segment+" in this range", http.StatusNotFound)
			return
		}
		f = sf
	}
	if t := r.URL.Query().Get("window"); t != "" {
		if at, err := time.Parse(time.RFC3339, t); err == nil {
			for i, s := range rep.Windows {
				if s.Equal(at) && f.Dist.Cur != nil && f.Dist.Cur[i] != nil {
					f.Chosen = i
				}
			}
		}
	}
	// The page's data is the one feature: the chooser's script reads it.
	one := *rep
	one.Features, one.Segments = []Feature{*f}, nil
	p, err := newPage("feature", &one, q.By, nil)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	p.Live, p.Base, p.Segment, p.SegmentLinks = true, u.prefix, segment, segLinks
	p.Title = "Vigil: " + q.Model + " · " + name
	p.ModelURL, p.FeatureURLAll = u.modelURL(q.Model, qs), u.featureURL(q.Model, name, qs, "")
	u.write(w, r, p)
}

// segmentFeature is the feature's view in one segment: the segment's drift
// scores and data quality, and for a number its distributions; a string's
// or bool's distribution stays the whole traffic's (the page says so).
func segmentFeature(rep *Report, segment, name string) (*Feature, bool) {
	var base *Feature
	for i := range rep.Features {
		if rep.Features[i].Name == name {
			base = &rep.Features[i]
		}
	}
	for _, s := range rep.Segments {
		if s.Segment != segment {
			continue
		}
		for _, sf := range s.Features {
			if sf.Name == name {
				f := *base
				f.Method, f.Score, f.Threshold, f.Drifted, f.DriftedWindows = sf.Method, sf.Score, sf.Threshold, sf.Drifted, sf.DriftedWindows
				f.Missing, f.TypeMismatch, f.OutOfRange, f.NewCategory = sf.Missing, sf.TypeMismatch, sf.OutOfRange, sf.NewCategory
				if base.Kind == "number" {
					f.Dist.Cur = sf.Hist
				}
				f.Chosen = chosen(&f)
				return &f, true
			}
		}
	}
	return nil, false
}

func (u *ui) write(w http.ResponseWriter, r *http.Request, p *page) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	// The pages fetch nothing: forbid it, so that a regression shows.
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:; form-action 'self'")
	if err := pages.ExecuteTemplate(w, "page", p); err != nil {
		u.log.Warn().Err(err).Str("path", r.URL.Path).Msg("render UI page")
	}
}

func (u *ui) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, ErrNoData), errors.Is(err, drift.ErrNoReference):
		http.Error(w, err.Error(), http.StatusNotFound)
	case r.Context().Err() != nil:
	default:
		u.log.Warn().Err(err).Str("path", r.URL.Path).Msg("UI page")
		http.Error(w, "cannot read the stored data: "+err.Error(), http.StatusServiceUnavailable)
	}
}
