package alerting_test

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/vigil-ml/vigil/processors/alerting"
)

func Example() {
	cfg, err := alerting.Load(strings.NewReader(`
receivers:
  - {name: oncall, type: webhook, url: env:VIGIL_ONCALL_URL, secret: env:VIGIL_ONCALL_HMAC}
rules:
  - name: AmountDrift
    metric: psi
    features: [amount]
    condition: {above: 0.2}
    for: 2
    receivers: [oncall]
`))
	if err != nil {
		panic(err)
	}
	if err := cfg.Validate(alerting.DefaultCatalog()); err != nil {
		panic(err)
	}
	// restored would come from ClickHouse; nil on the first run.
	var restored []alerting.SeriesState
	e := alerting.NewEvaluator(cfg, restored, nil)

	start := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	var obs []alerting.Observation
	for i, psi := range []float64{0.25, 0.31, 0.12} {
		ws := start.Add(time.Duration(i) * time.Hour)
		obs = append(obs, alerting.Observation{
			Metric: "psi", Model: "fraud", Feature: "amount",
			WindowStart: ws, WindowEnd: ws.Add(time.Hour), Value: psi, Reference: math.NaN(),
		})
	}
	for _, n := range e.Observe(obs, start.Add(24*time.Hour)) {
		fmt.Println(n.Alert.Status, n.Receivers, n.Alert.Annotations["summary"])
	}
	for _, st := range e.Changed() { // persist these after recording the notifications
		fmt.Println(st.Rule, st.Model, st.Feature, st.Status, st.LastWindow.Format(time.TimeOnly))
	}
	// Output:
	// firing [oncall] fraud: psi of amount is 0.31 (threshold 0.2, window 1h)
	// resolved [oncall] fraud: psi of amount is 0.12 (threshold 0.2, window 1h)
	// AmountDrift fraud amount inactive 14:00:00
}
