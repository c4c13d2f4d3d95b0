package serving

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/vigil-ml/vigil/schemas"
)

// ErrInvalid wraps every reason a payload is refused: it is malformed or
// does not fit its mapping. Permanent: do not retry it.
var ErrInvalid = errors.New("invalid serving payload")

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
}

// Defaults of Config.
const (
	DefaultMaxPending = 10000
	DefaultPendingTTL = time.Minute
)

// Config configures a Converter.
type Config struct {
	// MaxPending bounds the halves waiting for their other half; when full,
	// the oldest is evicted (and counted).
	MaxPending int
	// PendingTTL is how long a half waits for its other half before it is
	// dropped (and counted).
	PendingTTL time.Duration
	// Mapping is the per-model mapping (mapping.go).
	Mapping Mapping
}

// DefaultConfig returns the defaults, with an empty mapping.
func DefaultConfig() Config {
	return Config{MaxPending: DefaultMaxPending, PendingTTL: DefaultPendingTTL}
}

// Validate checks the bounds and the mapping.
func (c *Config) Validate() error {
	if c.MaxPending < 1 {
		return fmt.Errorf("serving: max pending pairs %d: want at least 1", c.MaxPending)
	}
	if c.PendingTTL <= 0 {
		return fmt.Errorf("serving: pending pair ttl %v: want > 0", c.PendingTTL)
	}
	return c.Mapping.Validate()
}

// Converter converts serving-stack payloads into events. It implements
// gateway.Converter. Safe for concurrent use.
type Converter struct {
	cfg Config
	log zerolog.Logger
	now func() time.Time

	mu sync.Mutex
	p  *pairer

	pairs   *prometheus.CounterVec
	pending prometheus.Gauge
	events  *prometheus.CounterVec
	errs    *prometheus.CounterVec
}

// New returns a Converter whose metrics are registered on reg (nil: not
// registered).
func New(cfg Config, reg prometheus.Registerer, log zerolog.Logger) (*Converter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Converter{
		cfg: cfg,
		log: log,
		now: time.Now,
		p:   newPairer(cfg.MaxPending, cfg.PendingTTL),
		pairs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_serving_pairs_total",
			Help: "Request/response halves by what became of them: paired (a pair completed), expired (waited longer than the ttl), evicted (dropped to make room), duplicate (a half already waiting came again).",
		}, []string{"result"}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vigil_serving_pending_pairs",
			Help: "Halves waiting for their other half.",
		}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_serving_events_total",
			Help: "Events converted from serving payloads, by protocol (v1, v2).",
		}, []string{"protocol"}),
		errs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_serving_rejected_total",
			Help: "Serving payloads refused, by stage: cloudevent (the envelope), payload (the inference body or its mapping).",
		}, []string{"stage"}),
	}
	for _, r := range [...]string{"paired", "expired", "evicted", "duplicate"} {
		c.pairs.WithLabelValues(r)
	}
	for _, p := range [...]string{"v1", "v2"} {
		c.events.WithLabelValues(p)
	}
	for _, s := range [...]string{"cloudevent", "payload"} {
		c.errs.WithLabelValues(s)
	}
	if reg != nil {
		for _, col := range []prometheus.Collector{c.pairs, c.pending, c.events, c.errs} {
			if err := reg.Register(col); err != nil {
				return nil, fmt.Errorf("serving: register metrics: %w", err)
			}
		}
	}
	return c, nil
}

// CloudEvent converts the CloudEvents of one HTTP message (binary,
// structured or batched mode). It returns the events the pairs it completes
// make: none when it is the first half of a pair.
func (c *Converter) CloudEvent(h http.Header, body []byte) ([]schemas.Event, error) {
	ces, err := decodeHTTPCloudEvents(h, body)
	if err != nil {
		c.errs.WithLabelValues("cloudevent").Inc()
		return nil, err
	}
	halves := make([]Half, 0, len(ces))
	for i := range ces {
		half, err := halfOfCloudEvent(&ces[i])
		if err != nil {
			c.errs.WithLabelValues("cloudevent").Inc()
			return nil, err
		}
		halves = append(halves, half)
	}
	var out []schemas.Event
	for _, half := range halves {
		evs, err := c.Offer(half)
		if err != nil {
			return out, err
		}
		out = append(out, evs...)
	}
	return out, nil
}

func halfOfCloudEvent(ce *cloudEvent) (Half, error) {
	h := Half{ID: ce.id(), Served: ce.attrs[AttrInferenceService], Component: ce.attrs[AttrComponent], Body: ce.data, Attrs: ce.attrs}
	switch ce.typ() {
	case TypeInferenceRequest:
	case TypeInferenceResponse:
		h.Response = true
	default:
		return Half{}, invalidf("cloudevent: type %q is neither %s nor %s", ce.typ(), TypeInferenceRequest, TypeInferenceResponse)
	}
	if t := ce.attrs["time"]; t != "" {
		ts, err := time.Parse(time.RFC3339Nano, t)
		if err != nil {
			return Half{}, invalidf("cloudevent: time %q is not RFC 3339", t)
		}
		h.Time = ts
	}
	if len(h.Body) == 0 {
		return Half{}, invalidf("cloudevent %s: no data", h.ID)
	}
	return h, nil
}

// OIPPair converts one {"request": ..., "response": ...} body of the Open
// Inference Protocol v2 (or V1) for the served model. The request id is the
// request's id, else the response's, else a hash of the body.
func (c *Converter) OIPPair(model string, body []byte) ([]schemas.Event, error) {
	var pair struct {
		Request  json.RawMessage `json:"request"`
		Response json.RawMessage `json:"response"`
	}
	if err := json.Unmarshal(body, &pair); err != nil {
		c.errs.WithLabelValues("payload").Inc()
		return nil, invalidf("pair: not a JSON object {\"request\": ..., \"response\": ...}: %v", err)
	}
	if pair.Request == nil || pair.Response == nil {
		c.errs.WithLabelValues("payload").Inc()
		return nil, invalidf("pair: want both \"request\" and \"response\"")
	}
	sum := sha256.Sum256(body)
	now := c.now()
	req := Half{ID: "oip-" + hex.EncodeToString(sum[:8]), Served: model, Body: pair.Request, Time: now}
	resp := Half{Response: true, ID: req.ID, Served: model, Body: pair.Response, Time: now}
	return c.convert(&req, &resp, true)
}

// Offer pairs one half with its other half, and converts the pair when it
// completes. It returns no events (and no error) for a first half, a
// duplicate one or one whose other half expired.
func (c *Converter) Offer(h Half) ([]schemas.Event, error) {
	now := c.now()
	c.mu.Lock()
	c.expireLocked(now)
	other, o, evicted := c.p.offer(h, now)
	c.pending.Set(float64(c.p.len()))
	c.mu.Unlock()
	if evicted > 0 {
		c.pairs.WithLabelValues("evicted").Add(float64(evicted))
		c.log.Warn().Int("evicted", evicted).Int("max_pending", c.cfg.MaxPending).Msg("serving: pairing buffer full; dropped the oldest halves")
	}
	switch o {
	case held:
		return nil, nil
	case duplicate:
		c.pairs.WithLabelValues("duplicate").Inc()
		return nil, nil
	}
	c.pairs.WithLabelValues("paired").Inc()
	req, resp := &other, &h
	if other.Response {
		req, resp = &h, &other
	}
	return c.convert(req, resp, false)
}

// Sweep drops the halves that waited longer than the ttl (Offer does it
// too; a caller with quiet periods calls Sweep on a ticker).
func (c *Converter) Sweep() {
	c.mu.Lock()
	c.expireLocked(c.now())
	c.pending.Set(float64(c.p.len()))
	c.mu.Unlock()
}

func (c *Converter) expireLocked(now time.Time) {
	if n := c.p.expire(now); n > 0 {
		c.pairs.WithLabelValues("expired").Add(float64(n))
	}
}

// PendingOrigins calls f with the Origin of every waiting half.
func (c *Converter) PendingOrigins(f func(origin any)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for el := c.p.order.Front(); el != nil; el = el.Next() {
		f(el.Value.(*pending).half.Origin)
	}
}

// Pending is the number of waiting halves.
func (c *Converter) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.p.len()
}

func (c *Converter) convert(req, resp *Half, hashID bool) ([]schemas.Event, error) {
	evs, protocol, err := c.convertPair(req, resp, hashID)
	if err != nil {
		c.errs.WithLabelValues("payload").Inc()
		return nil, err
	}
	c.events.WithLabelValues(protocol).Add(float64(len(evs)))
	return evs, nil
}

func decodeHalf(h *Half) (inferMessage, error) {
	switch {
	case h.Proto && h.Response:
		return decodeResponseProto(h.Body)
	case h.Proto:
		return decodeRequestProto(h.Body)
	case h.Response:
		return decodeResponseJSON(h.Body)
	}
	return decodeRequestJSON(h.Body)
}

func (c *Converter) convertPair(reqH, respH *Half, hashID bool) ([]schemas.Event, string, error) {
	req, err := decodeHalf(reqH)
	if err != nil {
		return nil, "", err
	}
	resp, err := decodeHalf(respH)
	if err != nil {
		return nil, "", err
	}
	protocol := "v2"
	if req.v1 {
		protocol = "v1"
	}
	served := first(resp.model, req.model, reqH.Served)
	if reqH.Served != "" && c.cfg.Mapping.Models != nil {
		// The transport's name (the InferenceService, the URL, the topic)
		// picks the mapping when it has one; else the payload's model_name.
		if _, ok := c.cfg.Mapping.Models[reqH.Served]; ok {
			served = reqH.Served
		}
	}
	if served == "" {
		return nil, "", invalidf("no model name: the payload has no model_name and the transport none")
	}
	mm := c.cfg.Mapping.lookup(served)
	id := reqH.ID
	if hashID {
		id = first(req.id, resp.id, reqH.ID)
	}
	b := eventBuilder{mm: mm, req: &req, resp: &resp}
	if err := b.plan(); err != nil {
		return nil, "", fmt.Errorf("model %s: %w", served, err)
	}
	base := schemas.Event{
		Model:        first(mm.Model, served),
		ModelVersion: first(mm.Version, resp.version, req.version, attr(reqH, respH, mm.VersionFrom)),
		Time:         reqH.Time,
	}
	if base.Time.IsZero() {
		base.Time = first(respH.Time, c.now())
	}
	if !reqH.Time.IsZero() && !respH.Time.IsZero() && respH.Time.After(reqH.Time) {
		base.Latency = respH.Time.Sub(reqH.Time)
	}
	for _, s := range mm.Segments {
		if v := attr(reqH, respH, s); v != "" {
			base.Segments = append(base.Segments, schemas.Tag{Key: s, Value: v})
		}
	}
	evs := make([]schemas.Event, b.n)
	for i := range evs {
		ev := base
		if err := b.row(i, id, &ev); err != nil {
			return nil, "", fmt.Errorf("model %s row %d: %w", served, i, err)
		}
		if err := ev.Validate(); err != nil {
			return nil, "", invalidf("model %s row %d: %v", served, i, err)
		}
		evs[i] = ev
	}
	return evs, protocol, nil
}

func attr(req, resp *Half, name string) string {
	if name == "" {
		return ""
	}
	if v := req.Attrs[name]; v != "" {
		return v
	}
	return resp.Attrs[name]
}

func first[T comparable](vs ...T) T {
	var zero T
	for _, v := range vs {
		if v != zero {
			return v
		}
	}
	return zero
}

// featureSource is one input tensor and the feature names of its columns.
type featureSource struct {
	t     *tensor
	names []string // one per column of a row; "" skips it
}

// eventBuilder turns the rows of a decoded pair into events, as a mapping says.
type eventBuilder struct {
	mm        *ModelMapping
	req, resp *inferMessage
	n         int
	features  []featureSource
	idTensor  *tensor
	score     *tensor
	label     *tensor
	value     *tensor
	probs     *tensor
	classes   []string
	posClass  int // index in classes of the positive class, -1 = none
}

func (b *eventBuilder) plan() error {
	b.n = -1
	if strings.HasPrefix(b.mm.EventID, eventIDInput) {
		name := strings.TrimPrefix(b.mm.EventID, eventIDInput)
		if b.idTensor = b.req.tensor(name); b.idTensor == nil {
			return invalidf("event_id: no input tensor %q", name)
		}
		if err := b.rows(b.idTensor, true); err != nil {
			return err
		}
	}
	if len(b.mm.Features) == 0 {
		for i := range b.req.tensors {
			t := &b.req.tensors[i]
			if t == b.idTensor {
				continue
			}
			if err := b.addFeatures(t, FeatureMapping{Tensor: t.name}); err != nil {
				return err
			}
		}
	} else {
		for _, fm := range b.mm.Features {
			t := b.req.tensor(fm.Tensor)
			if t == nil {
				return invalidf("features: no input tensor %q in the request", fm.Tensor)
			}
			if err := b.addFeatures(t, fm); err != nil {
				return err
			}
		}
	}
	if err := b.planPrediction(); err != nil {
		return err
	}
	if b.n <= 0 {
		return invalidf("no rows")
	}
	return nil
}

// rows checks that t has as many rows as the tensors before it.
func (b *eventBuilder) rows(t *tensor, one bool) error {
	if len(t.shape) == 0 {
		return invalidf("tensor %q: no shape", t.name)
	}
	if b.n >= 0 && t.rows() != b.n {
		return invalidf("tensor %q has %d rows, others %d", t.name, t.rows(), b.n)
	}
	b.n = t.rows()
	if one && t.width() != 1 {
		return invalidf("tensor %q: want one value per row, has shape %v", t.name, t.shape)
	}
	return nil
}

func (b *eventBuilder) addFeatures(t *tensor, fm FeatureMapping) error {
	if err := b.rows(t, false); err != nil {
		return err
	}
	w := t.width()
	src := featureSource{t: t}
	switch {
	case w == 1 && len(fm.Columns) == 0:
		src.names = []string{first(fm.Name, t.name)}
	case len(fm.Columns) > 0:
		src.names = fm.Columns
	case len(t.columns) > 0:
		src.names = t.columns
	default:
		src.names = make([]string, w)
		for j := range src.names {
			src.names[j] = t.name + "_" + strconv.Itoa(j)
		}
	}
	if len(src.names) != w {
		return invalidf("tensor %q: %d column names for %d values per row (shape %v)", t.name, len(src.names), w, t.shape)
	}
	b.features = append(b.features, src)
	n := 0
	for _, f := range b.features {
		n += len(f.names)
	}
	if n > maxFeatures {
		return invalidf("more than %d features per row", maxFeatures)
	}
	return nil
}

// maxFeatures bounds the features of one event (an image tensor is not a
// feature vector: name the columns you want, or leave it out).
const maxFeatures = 4096

func (b *eventBuilder) output(name, what string) (*tensor, error) {
	t := b.resp.tensor(name)
	if t == nil {
		return nil, invalidf("prediction.%s: no output %q in the response", what, name)
	}
	return t, nil
}

func (b *eventBuilder) planPrediction() error {
	p := &b.mm.Prediction
	b.classes, b.posClass = p.Classes, -1
	if p.isDefault() {
		if len(b.resp.tensors) == 0 {
			return invalidf("the response has no outputs")
		}
		t := &b.resp.tensors[0]
		if err := b.rows(t, false); err != nil {
			return err
		}
		switch {
		case t.width() == 1 && t.isFloat():
			b.score = t
		case t.width() == 1:
			b.label = t
		case t.isNumeric():
			b.probs = t
			if t.width() == 2 {
				b.posClass = 1
			}
		default:
			return invalidf("output %q: %d %s values per row: set prediction in the mapping", t.name, t.width(), t.datatype)
		}
	} else {
		for _, o := range []struct {
			name, what string
			dst        **tensor
		}{{p.Score, "score", &b.score}, {p.Label, "label", &b.label}, {p.Value, "value", &b.value}, {p.Probabilities, "probabilities", &b.probs}} {
			if o.name == "" {
				continue
			}
			t, err := b.output(o.name, o.what)
			if err != nil {
				return err
			}
			if err := b.rows(t, o.what != "probabilities"); err != nil {
				return err
			}
			if o.what != "label" && !t.isNumeric() {
				return invalidf("prediction.%s: output %q is %s, not numeric", o.what, t.name, t.datatype)
			}
			*o.dst = t
		}
	}
	if b.probs != nil {
		k := b.probs.width()
		if len(b.classes) == 0 {
			b.classes = make([]string, k)
			for j := range b.classes {
				b.classes[j] = strconv.Itoa(j)
			}
		} else if len(b.classes) != k {
			return invalidf("prediction.classes: %d classes for %d probabilities per row", len(b.classes), k)
		}
		if p.PositiveClass != "" {
			for j, c := range b.classes {
				if c == p.PositiveClass {
					b.posClass = j
				}
			}
			if b.posClass < 0 {
				return invalidf("prediction.positive_class %q is not a class", p.PositiveClass)
			}
		}
	}
	return nil
}

func (b *eventBuilder) row(i int, reqID string, ev *schemas.Event) error {
	switch {
	case b.idTensor != nil:
		v := b.idTensor.row(i)[0]
		ev.ID = valueString(v)
		if ev.ID == "" {
			return invalidf("event id tensor %q: empty value", b.idTensor.name)
		}
	case b.mm.EventID == EventIDRequest && b.n == 1:
		ev.ID = reqID
	default:
		ev.ID = reqID + "-" + strconv.Itoa(i)
	}
	if reqID == "" && b.idTensor == nil {
		return invalidf("no request id")
	}
	n := 0
	for _, f := range b.features {
		n += len(f.names)
	}
	ev.Features = make([]schemas.Feature, 0, n)
	for _, f := range b.features {
		for j, v := range f.t.row(i) {
			if f.names[j] != "" {
				ev.Features = append(ev.Features, schemas.Feature{Name: f.names[j], Value: v})
			}
		}
	}
	p := &ev.Prediction
	if b.score != nil {
		p.Score, p.HasScore = b.score.row(i)[0].Num, true
	}
	if b.value != nil {
		p.Value, p.HasValue = b.value.row(i)[0].Num, true
	}
	if b.label != nil {
		v := b.label.row(i)[0]
		if v.Kind == schemas.Number && len(b.classes) > 0 {
			k := int(v.Num)
			if float64(k) != v.Num || k < 0 || k >= len(b.classes) {
				return invalidf("label %v is not a class index (%d classes)", v.Num, len(b.classes))
			}
			p.Label = b.classes[k]
		} else {
			p.Label = valueString(v)
		}
	}
	if b.probs != nil {
		row := b.probs.row(i)
		p.Probabilities = make([]schemas.ClassProbability, len(row))
		best := 0
		for j, v := range row {
			if v.Kind != schemas.Number {
				return invalidf("probabilities: value %d is null", j)
			}
			p.Probabilities[j] = schemas.ClassProbability{Class: b.classes[j], P: v.Num}
			if v.Num > row[best].Num {
				best = j
			}
		}
		if b.label == nil {
			p.Label = b.classes[best]
		}
		if b.posClass >= 0 && b.score == nil {
			p.Score, p.HasScore = row[b.posClass].Num, true
		}
	}
	return nil
}

func valueString(v schemas.Value) string {
	switch v.Kind {
	case schemas.String:
		return v.Str
	case schemas.Bool:
		return strconv.FormatBool(v.Bool)
	case schemas.Number:
		if v.Num == math.Trunc(v.Num) && math.Abs(v.Num) < 1<<53 {
			return strconv.FormatInt(int64(v.Num), 10)
		}
		return strconv.FormatFloat(v.Num, 'g', -1, 64)
	}
	return ""
}
