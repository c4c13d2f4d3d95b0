package gateway

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the gateway's counters (docs/METRICS.md, "gateway").
type metrics struct {
	requests      *prometheus.CounterVec   // route, status
	tokenRequests *prometheus.CounterVec   // token, status
	items         *prometheus.CounterVec   // route, result
	duration      *prometheus.HistogramVec // route
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_gateway_requests_total",
			Help: "HTTP requests to the gateway's routes, by route and status code (401: no or unknown token, 413: body or items over the limit, 429: rate limit, 503: backpressure).",
		}, []string{"route", "status"}),
		tokenRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_gateway_token_requests_total",
			Help: "Authenticated HTTP requests to the gateway's routes, by token name (anonymous without a tokens file) and status code.",
		}, []string{"token", "status"}),
		items: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_gateway_events_total",
			Help: "Items (events, or labels on route labels) of the gateway's requests by route and result: accepted (given to the producer), invalid, unauthorized_model, too_many_features, rate_limited, backpressure.",
		}, []string{"route", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vigil_gateway_request_duration_seconds",
			Help:    "Time to serve a request of the gateway's routes, from its headers to its answer.",
			Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5},
		}, []string{"route"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.tokenRequests, m.items, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
