package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/vigil-ml/vigil/ingest"
	"github.com/vigil-ml/vigil/internal/auth"
	"github.com/vigil-ml/vigil/schemas"
	"github.com/vigil-ml/vigil/schemas/wire"
)

// Publisher is where the gateway puts what it accepts; *ingest.Producer
// implements it. Record and RecordLabel must not block for long (the
// request waits) and return ingest.ErrBufferFull (or ingest.ErrClosed) when
// they cannot take the item now: the client is told to retry (503).
type Publisher interface {
	Record(ctx context.Context, e schemas.Event) error
	RecordLabel(ctx context.Context, l schemas.Label) error
}

var _ Publisher = (*ingest.Producer)(nil)

// Converter turns serving-stack payloads into events (ingest/serving
// implements it).
type Converter interface {
	// CloudEvent converts one CloudEvent received over HTTP (binary or
	// structured mode). It returns the events the event completes: none
	// when it is the first half of a request/response pair.
	CloudEvent(h http.Header, body []byte) ([]schemas.Event, error)
	// OIPPair converts one {"request": …, "response": …} Open Inference
	// Protocol v2 body for model.
	OIPPair(model string, body []byte) ([]schemas.Event, error)
}

// Defaults of Config.
const (
	DefaultAddr         = ":8080"
	DefaultMaxBodyBytes = 8 << 20
	DefaultMaxItems     = 10000
	DefaultMaxFeatures  = 1000
	DefaultRetryAfter   = time.Second
	DefaultReadTimeout  = 30 * time.Second
)

// Config configures the handlers. Zero values take the defaults.
type Config struct {
	// MaxBodyBytes bounds a request body, compressed and decompressed
	// (413). Default DefaultMaxBodyBytes (8 MiB).
	MaxBodyBytes int64
	// MaxItems bounds the events or labels of one request (413, nothing
	// published). Default DefaultMaxItems.
	MaxItems int
	// MaxFeatures bounds the features of one event (the event is
	// rejected). Default DefaultMaxFeatures.
	MaxFeatures int
	// RetryAfter is the Retry-After of a 503 (backpressure). Default 1s.
	RetryAfter time.Duration
	// ReadTimeout bounds reading one request body. Default 30s.
	ReadTimeout time.Duration
	// Tokens are the accepted bearer tokens; nil: no authentication.
	Tokens *auth.Tokens
	// Converter serves /v1/cloudevents and /v1/oip/{model}; nil: those
	// routes are not mounted (404).
	Converter Converter
}

// WithDefaults is c with its zero values replaced by the defaults.
func (c Config) WithDefaults() Config {
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.MaxItems == 0 {
		c.MaxItems = DefaultMaxItems
	}
	if c.MaxFeatures == 0 {
		c.MaxFeatures = DefaultMaxFeatures
	}
	if c.RetryAfter == 0 {
		c.RetryAfter = DefaultRetryAfter
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	return c
}

// Validate reports the limits that are out of range.
func (c Config) Validate() error {
	var errs []error
	if c.MaxBodyBytes < 1<<10 {
		errs = append(errs, fmt.Errorf("gateway max body bytes %d (want >= 1024)", c.MaxBodyBytes))
	}
	if c.MaxItems < 1 || c.MaxFeatures < 1 {
		errs = append(errs, fmt.Errorf("gateway max items %d and max features %d must be >= 1", c.MaxItems, c.MaxFeatures))
	}
	if c.RetryAfter < time.Second || c.ReadTimeout <= 0 {
		errs = append(errs, fmt.Errorf("gateway retry after %v must be >= 1s and read timeout %v > 0", c.RetryAfter, c.ReadTimeout))
	}
	return errors.Join(errs...)
}

// Routes, as the route label of the metrics says them.
const (
	RouteEvents      = "events"
	RouteLabels      = "labels"
	RouteCloudEvents = "cloudevents"
	RouteOIP         = "oip"
)

// Results of an item, as the result label of vigil_gateway_events_total
// says them.
const (
	ResultAccepted          = "accepted"
	ResultInvalid           = "invalid"
	ResultUnauthorizedModel = "unauthorized_model"
	ResultTooManyFeatures   = "too_many_features"
	ResultRateLimited       = "rate_limited"
	ResultBackpressure      = "backpressure"
)

// Handler serves the gateway's routes. Build it with New; mount it with
// Mount.
type Handler struct {
	cfg Config
	pub Publisher
	m   *metrics
	log zerolog.Logger

	events sync.Pool // *wire.JSONDecoder
	labels sync.Pool // *wire.LabelJSONDecoder
	items  sync.Pool // *[][]byte
}

// New builds the handlers of cfg over pub and registers their metrics on
// reg.
func New(cfg Config, pub Publisher, reg prometheus.Registerer, log zerolog.Logger) (*Handler, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	h := &Handler{cfg: cfg, pub: pub, m: m, log: log.With().Str("component", "gateway").Logger()}
	h.events.New = func() any { return new(wire.JSONDecoder) }
	h.labels.New = func() any { return new(wire.LabelJSONDecoder) }
	h.items.New = func() any { s := make([][]byte, 0, 128); return &s }
	return h, nil
}

// Mux is where Mount puts the routes: *http.ServeMux and
// *observe.Server both are.
type Mux interface {
	Handle(pattern string, h http.Handler)
}

// Mount puts the routes on mux.
func (h *Handler) Mount(mux Mux) {
	mux.Handle("POST /v1/events", h.route(RouteEvents, h.serveEvents))
	mux.Handle("POST /v1/labels", h.route(RouteLabels, h.serveLabels))
	if h.cfg.Converter != nil {
		mux.Handle("POST /v1/cloudevents", h.route(RouteCloudEvents, h.serveCloudEvent))
		mux.Handle("POST /v1/oip/{model}", h.route(RouteOIP, h.serveOIP))
	}
}

// Rejection is one rejected item of a request.
type Rejection struct {
	Index int    `json:"index"`
	Error string `json:"error"`
	// Retry marks an item that may be sent again as it is (rate limit,
	// backpressure).
	Retry bool `json:"retry,omitempty"`
}

// Response is the body of every answer of the routes.
type Response struct {
	Accepted int         `json:"accepted"`
	Rejected []Rejection `json:"rejected"`
	// Error says why the whole request was refused (auth, limits, an
	// unparseable body).
	Error string `json:"error,omitempty"`
}

// request is the state of one request being served.
type request struct {
	route  string
	token  *auth.Token
	status int
	resp   Response
	counts [6]int // by result, in the order of resultNames
	retry  time.Duration
}

var resultNames = [...]string{ResultAccepted, ResultInvalid, ResultUnauthorizedModel, ResultTooManyFeatures, ResultRateLimited, ResultBackpressure}

const (
	accepted = iota
	invalidItem
	unauthorizedModel
	tooManyFeatures
	rateLimited
	backpressure
)

func (q *request) reject(i int, result int, reason string) {
	q.resp.Rejected = append(q.resp.Rejected, Rejection{Index: i, Error: reason, Retry: result == rateLimited || result == backpressure})
	q.counts[result]++
}

// fail ends the request with one error for the whole of it.
func (q *request) fail(status int, err error) {
	q.status = status
	q.resp.Error = err.Error()
}

// route wraps a route's body handler: authentication, the body read
// deadline, metrics and the answer.
func (h *Handler) route(name string, serve func(w http.ResponseWriter, r *http.Request, q *request)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		q := &request{route: name, resp: Response{Rejected: []Rejection{}}}
		tok, err := h.cfg.Tokens.Check(r)
		if err != nil {
			h.m.requests.WithLabelValues(name, "401").Inc()
			h.m.duration.WithLabelValues(name).Observe(time.Since(start).Seconds())
			auth.Unauthorized(w, err)
			return
		}
		q.token = tok
		if h.cfg.ReadTimeout > 0 {
			_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(h.cfg.ReadTimeout))
		}
		serve(w, r, q)
		h.answer(w, q)
		status := strconv.Itoa(q.status)
		h.m.requests.WithLabelValues(name, status).Inc()
		h.m.tokenRequests.WithLabelValues(tok.Name, status).Inc()
		for i, n := range q.counts {
			if n > 0 {
				h.m.items.WithLabelValues(name, resultNames[i]).Add(float64(n))
			}
		}
		h.m.duration.WithLabelValues(name).Observe(time.Since(start).Seconds())
		if q.status >= 400 {
			if e := h.log.Debug(); e.Enabled() {
				e.Str("route", name).Str("token", tok.Name).Int("status", q.status).Int("accepted", q.resp.Accepted).
					Int("rejected", len(q.resp.Rejected)).Str("error", q.resp.Error).Msg("request refused")
			}
		}
	})
}

// answer sets the status from the counts (unless fail set it) and writes
// the body.
func (h *Handler) answer(w http.ResponseWriter, q *request) {
	q.resp.Accepted = q.counts[accepted]
	if q.status == 0 {
		total := 0
		for _, n := range q.counts {
			total += n
		}
		switch {
		case q.counts[backpressure] > 0:
			q.status = http.StatusServiceUnavailable
			q.retry = h.cfg.RetryAfter
		case q.counts[rateLimited] > 0:
			q.status = http.StatusTooManyRequests
		case total == 0 || q.counts[accepted] == total:
			q.status = http.StatusOK
		case q.counts[accepted] > 0:
			q.status = http.StatusMultiStatus
		case q.counts[unauthorizedModel] == total:
			q.status = http.StatusForbidden
		default:
			q.status = http.StatusBadRequest
		}
	}
	if q.retry > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((q.retry+time.Second-1)/time.Second)))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(q.status)
	b, err := json.Marshal(&q.resp)
	if err != nil {
		panic(fmt.Sprintf("BUG: encode gateway response: %v", err))
	}
	_, _ = w.Write(append(b, '\n'))
}

// body reads and splits a request's body; on failure it has set q's
// answer and returns ok false. The caller calls done when it is through
// with the items (they point into a pooled buffer).
func (h *Handler) body(w http.ResponseWriter, r *http.Request, q *request) (items [][]byte, done func(), ok bool) {
	buf, err := readBody(r, w, h.cfg.MaxBodyBytes)
	if err != nil {
		h.bodyError(q, err)
		return nil, nil, false
	}
	ip := h.items.Get().(*[][]byte)
	items, err = splitItems((*ip)[:0], buf.Bytes(), isNDJSON(r.Header.Get("Content-Type")), h.cfg.MaxItems)
	done = func() {
		clear(items)
		*ip = items[:0]
		h.items.Put(ip)
		putBuf(buf)
	}
	if err != nil {
		done()
		h.bodyError(q, err)
		return nil, nil, false
	}
	if len(items) == 0 {
		done()
		q.fail(http.StatusBadRequest, errors.New("empty body: no items"))
		return nil, nil, false
	}
	return items, done, true
}

func (h *Handler) bodyError(q *request, err error) {
	var tl errTooLarge
	var tm errTooManyItems
	var se errSyntax
	switch {
	case errors.As(err, &tl), errors.As(err, &tm):
		q.fail(http.StatusRequestEntityTooLarge, err)
	case errors.Is(err, errUnsupported):
		q.fail(http.StatusUnsupportedMediaType, err)
	case errors.As(err, &se):
		q.fail(http.StatusBadRequest, err)
		q.resp.Rejected = append(q.resp.Rejected, Rejection{Index: -1, Error: err.Error()})
	default:
		q.fail(http.StatusBadRequest, err)
	}
}

func (h *Handler) serveEvents(w http.ResponseWriter, r *http.Request, q *request) {
	items, done, ok := h.body(w, r, q)
	if !ok {
		return
	}
	defer done()
	d := h.events.Get().(*wire.JSONDecoder)
	defer h.events.Put(d)
	events := make([]schemas.Event, len(items))
	index := make([]int, 0, len(items)) // items of events that passed every check
	var slab []schemas.Feature
	for i, item := range items {
		e := &events[i]
		if cap(slab)-len(slab) < 16 {
			slab = make([]schemas.Feature, 0, min(4096, 32*(len(items)-i)))
		}
		e.Features = slab[len(slab):len(slab):cap(slab)]
		if err := d.Decode(item, e); err != nil {
			q.reject(i, invalidItem, err.Error())
			continue
		}
		if n := len(e.Features); n > 0 && n <= cap(slab)-len(slab) && &e.Features[0] == &slab[:len(slab)+1][len(slab)] {
			slab = slab[:len(slab)+n]
		}
		e.Features = e.Features[:len(e.Features):len(e.Features)]
		if h.check(q, i, e) {
			index = append(index, i)
		}
	}
	h.publishEvents(r.Context(), q, events, index)
}

// check applies the per-event limits and the token's model restriction.
func (h *Handler) check(q *request, i int, e *schemas.Event) bool {
	if len(e.Features) > h.cfg.MaxFeatures {
		q.reject(i, tooManyFeatures, fmt.Sprintf(`"features": %d features, more than the %d allowed per event`, len(e.Features), h.cfg.MaxFeatures))
		return false
	}
	if !q.token.AllowsModel(e.Model) {
		q.reject(i, unauthorizedModel, fmt.Sprintf(`"model": token %s may not publish for model %q`, q.token.Name, e.Model))
		return false
	}
	return true
}

// admit takes n items from the token's rate; when refused, it rejects the
// items of index (all of them) and returns false.
func (h *Handler) admit(q *request, index []int) bool {
	d, ok := q.token.Reserve(len(index))
	if ok {
		return true
	}
	reason := fmt.Sprintf("rate limit of token %s (%g items/s): retry after %v", q.token.Name, q.token.Rate, d)
	if len(index) > q.token.Burst() {
		reason = fmt.Sprintf("rate limit of token %s (%g items/s): %d items in one request exceed its burst of %d, send smaller batches",
			q.token.Name, q.token.Rate, len(index), q.token.Burst())
	}
	for _, i := range index {
		q.reject(i, rateLimited, reason)
	}
	q.retry = d
	return false
}

func (h *Handler) publishEvents(ctx context.Context, q *request, events []schemas.Event, index []int) {
	if len(index) == 0 || !h.admit(q, index) {
		return
	}
	for k, i := range index {
		err := h.pub.Record(ctx, events[i])
		if err == nil {
			q.counts[accepted]++
			continue
		}
		if h.refused(q, err, index[k:]) {
			return
		}
		q.reject(i, invalidItem, err.Error())
	}
}

// refused handles a publish error that refuses the rest of a request
// (buffer full, producer closed): the items of rest are rejected for
// backpressure and it returns true.
func (h *Handler) refused(q *request, err error, rest []int) bool {
	if !errors.Is(err, ingest.ErrBufferFull) && !errors.Is(err, ingest.ErrClosed) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	reason := "not published: the gateway's buffer is full (Kafka is slower than the traffic), retry"
	if errors.Is(err, ingest.ErrClosed) {
		reason = "not published: the gateway is shutting down, retry"
	}
	for _, i := range rest {
		q.reject(i, backpressure, reason)
	}
	return true
}

func (h *Handler) serveLabels(w http.ResponseWriter, r *http.Request, q *request) {
	items, done, ok := h.body(w, r, q)
	if !ok {
		return
	}
	defer done()
	d := h.labels.Get().(*wire.LabelJSONDecoder)
	defer h.labels.Put(d)
	labels := make([]schemas.Label, len(items))
	index := make([]int, 0, len(items))
	for i, item := range items {
		l := &labels[i]
		if err := d.Decode(item, l); err != nil {
			q.reject(i, invalidItem, err.Error())
			continue
		}
		if !q.token.AllowsModel(l.Model) {
			q.reject(i, unauthorizedModel, fmt.Sprintf(`"model": token %s may not publish for model %q`, q.token.Name, l.Model))
			continue
		}
		index = append(index, i)
	}
	if len(index) == 0 || !h.admit(q, index) {
		return
	}
	for k, i := range index {
		err := h.pub.RecordLabel(r.Context(), labels[i])
		if err == nil {
			q.counts[accepted]++
			continue
		}
		if h.refused(q, err, index[k:]) {
			return
		}
		q.reject(i, invalidItem, err.Error())
	}
}

func (h *Handler) serveCloudEvent(w http.ResponseWriter, r *http.Request, q *request) {
	h.serveConverted(w, r, q, func(body []byte) ([]schemas.Event, error) { return h.cfg.Converter.CloudEvent(r.Header, body) })
}

func (h *Handler) serveOIP(w http.ResponseWriter, r *http.Request, q *request) {
	model := r.PathValue("model")
	h.serveConverted(w, r, q, func(body []byte) ([]schemas.Event, error) { return h.cfg.Converter.OIPPair(model, body) })
}

// serveConverted reads the body (same limits), converts it and puts the
// events through the checks and publishing of /v1/events.
func (h *Handler) serveConverted(w http.ResponseWriter, r *http.Request, q *request, convert func([]byte) ([]schemas.Event, error)) {
	buf, err := readBody(r, w, h.cfg.MaxBodyBytes)
	if err != nil {
		h.bodyError(q, err)
		return
	}
	events, err := convert(buf.Bytes())
	putBuf(buf)
	if err != nil {
		q.fail(http.StatusBadRequest, err)
		return
	}
	if len(events) > h.cfg.MaxItems {
		q.fail(http.StatusRequestEntityTooLarge, errTooManyItems{h.cfg.MaxItems})
		return
	}
	index := make([]int, 0, len(events))
	for i := range events {
		e := &events[i]
		if err := e.Validate(); err != nil {
			q.reject(i, invalidItem, err.Error())
			continue
		}
		if h.check(q, i, e) {
			index = append(index, i)
		}
	}
	h.publishEvents(r.Context(), q, events, index)
}
