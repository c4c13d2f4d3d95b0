package webhook

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

var (
	t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	t1 = t0.Add(time.Hour)
)

func firing() Alert {
	return Alert{
		Fingerprint: "fp1", Status: StatusFiring,
		Labels:      map[string]string{"alertname": "AmountDrift", "severity": "critical"},
		Annotations: map[string]string{"summary": "amount drifted"},
		StartsAt:    t0,
		Model:       "fraud", Metric: "psi", Feature: "amount", Segment: "region=eu", Window: "1h",
		Value: 0.31, Threshold: 0.2,
		SQL: "SELECT psi FROM vigil_drift WHERE model = 'fraud' AND x < 1",
	}
}

func resolved() Alert {
	a := firing()
	a.Status, a.EndsAt = StatusResolved, t1
	return a
}

func readBody(t *testing.T, req *http.Request) []byte {
	t.Helper()
	b, err := io.ReadAll(req.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSignedWebhookEncode(t *testing.T) {
	w, err := NewSignedWebhook(SignedWebhookConfig{URL: "http://example.test/hook", Secret: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	w.now = func() time.Time { return t1 }
	req, err := w.Encode([]Alert{firing()})
	if err != nil {
		t.Fatal(err)
	}
	body := readBody(t, req)
	want := `{"version":"1","alerts":[{"fingerprint":"fp1","status":"firing",` +
		`"labels":{"alertname":"AmountDrift","severity":"critical"},"annotations":{"summary":"amount drifted"},` +
		`"startsAt":"2025-03-01T12:00:00Z","endsAt":"0001-01-01T00:00:00Z","model":"fraud","metric":"psi",` +
		`"feature":"amount","segment":"region=eu","window":"1h","value":0.31,"threshold":0.2,` +
		`"sql":"SELECT psi FROM vigil_drift WHERE model = 'fraud' AND x < 1"}]}`
	if string(body) != want {
		t.Errorf("body\n got %s\nwant %s", body, want)
	}
	for h, v := range map[string]string{
		"Content-Type":  "application/json",
		HeaderTimestamp: "1740834000",
		HeaderSignature: Sign([]byte("s3cret"), "1740834000", []byte(want)),
	} {
		if got := req.Header.Get(h); got != v {
			t.Errorf("header %s = %q, want %q", h, got, v)
		}
	}
	if req.Method != http.MethodPost || req.URL.String() != "http://example.test/hook" {
		t.Errorf("request %s %s", req.Method, req.URL)
	}
}

func TestVerify(t *testing.T) {
	body := []byte(`{"version":"1","alerts":[]}`)
	ts := "1740834000"
	now := time.Unix(1740834000, 0).Add(30 * time.Second)
	good := Sign([]byte("k"), ts, body)
	if !strings.HasPrefix(good, "sha256=") || len(good) != len("sha256=")+64 {
		t.Fatalf("signature shape %q", good)
	}
	tests := []struct {
		name      string
		secret    string
		ts, sig   string
		body      []byte
		now       time.Time
		wantError error
	}{
		{"valid", "k", ts, good, body, now, nil},
		{"tampered body", "k", ts, good, []byte(`{"version":"1","alerts":[{}]}`), now, ErrBadSignature},
		{"wrong secret", "other", ts, good, body, now, ErrBadSignature},
		{"old timestamp", "k", ts, good, body, now.Add(10 * time.Minute), ErrStaleTimestamp},
		{"future timestamp", "k", ts, good, body, now.Add(-10 * time.Minute), ErrStaleTimestamp},
		{"timestamp swapped", "k", "1740834001", good, body, now, ErrBadSignature},
		{"no prefix", "k", ts, strings.TrimPrefix(good, "sha256="), body, now, ErrBadSignature},
		{"not hex", "k", ts, "sha256=zz", body, now, ErrBadSignature},
		{"bad timestamp", "k", "yesterday", good, body, now, ErrStaleTimestamp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify(tt.secret, tt.ts, tt.sig, tt.body, tt.now, 5*time.Minute)
			if !errors.Is(err, tt.wantError) || (tt.wantError == nil) != (err == nil) {
				t.Errorf("Verify = %v, want %v", err, tt.wantError)
			}
		})
	}
}

func TestSignatureKnownVector(t *testing.T) {
	// python3 -c 'import hmac,hashlib;print(hmac.new(b"k",b"1.{}",hashlib.sha256).hexdigest())'
	const want = "sha256=3dd49b2593d0f9a349e9e71c4bde3e2b862c2be4003fe9b4ba81332029310158"
	if got := Sign([]byte("k"), "1", []byte("{}")); got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
}

// amMessage mirrors Alertmanager's webhook.Message JSON tags, written out
// independently of the package's types.
type amMessage struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   *int              `json:"truncatedAlerts"`
	Status            string            `json:"status"`
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []struct {
		Status       string            `json:"status"`
		Labels       map[string]string `json:"labels"`
		Annotations  map[string]string `json:"annotations"`
		StartsAt     string            `json:"startsAt"`
		EndsAt       string            `json:"endsAt"`
		GeneratorURL string            `json:"generatorURL"`
		Fingerprint  string            `json:"fingerprint"`
	} `json:"alerts"`
}

func TestAlertmanagerEncode(t *testing.T) {
	r, err := NewAlertmanager(AlertmanagerConfig{
		Name: "am", URL: "http://am.test/hook", ExternalURL: "http://vigil.test", GeneratorURL: "http://grafana.test/d/vigil",
	})
	if err != nil {
		t.Fatal(err)
	}
	second := firing()
	second.Fingerprint, second.Feature, second.Labels = "fp2", "age", map[string]string{"alertname": "AmountDrift", "severity": "warning"}
	req, err := r.Encode([]Alert{firing(), second})
	if err != nil {
		t.Fatal(err)
	}
	raw := readBody(t, req)
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	var m amMessage
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
	check := func(name string, got, want any) {
		t.Helper()
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		if string(g) != string(w) {
			t.Errorf("%s = %s, want %s", name, g, w)
		}
	}
	check("version", m.Version, "4")
	check("groupKey", m.GroupKey, `{}:{metric="psi", model="fraud"}`)
	check("truncatedAlerts", *m.TruncatedAlerts, 0)
	check("status", m.Status, "firing")
	check("receiver", m.Receiver, "am")
	check("externalURL", m.ExternalURL, "http://vigil.test")
	check("groupLabels", m.GroupLabels, map[string]string{"model": "fraud", "metric": "psi"})
	check("commonLabels", m.CommonLabels, map[string]string{"alertname": "AmountDrift", "model": "fraud", "metric": "psi", "segment": "region=eu", "window": "1h"})
	check("commonAnnotations", m.CommonAnnotations, map[string]string{"summary": "amount drifted", "value": "0.31", "threshold": "0.2", "sql": firing().SQL})
	if len(m.Alerts) != 2 {
		t.Fatalf("alerts: %d", len(m.Alerts))
	}
	a := m.Alerts[0]
	check("alerts[0].status", a.Status, "firing")
	check("alerts[0].labels", a.Labels, map[string]string{"alertname": "AmountDrift", "severity": "critical", "model": "fraud", "metric": "psi", "feature": "amount", "segment": "region=eu", "window": "1h"})
	check("alerts[0].startsAt", a.StartsAt, "2025-03-01T12:00:00Z")
	check("alerts[0].endsAt", a.EndsAt, "0001-01-01T00:00:00Z")
	check("alerts[0].generatorURL", a.GeneratorURL, "http://grafana.test/d/vigil")
	check("alerts[0].fingerprint", a.Fingerprint, "fp1")
	check("alerts[1].fingerprint", m.Alerts[1].Fingerprint, "fp2")

	req, _ = r.Encode([]Alert{resolved()})
	m = amMessage{}
	if err := json.Unmarshal(readBody(t, req), &m); err != nil {
		t.Fatal(err)
	}
	check("resolved status", m.Status, "resolved")
	check("resolved endsAt", m.Alerts[0].EndsAt, "2025-03-01T13:00:00Z")
}

func TestSlackEncode(t *testing.T) {
	s, err := NewSlack(SlackConfig{URL: "http://slack.test/services/T/B/x"})
	if err != nil {
		t.Fatal(err)
	}
	req, err := s.Encode([]Alert{firing(), resolved()})
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]string
	raw := readBody(t, req)
	if err := json.Unmarshal(raw, &body); err != nil || len(body) != 1 {
		t.Fatalf("body %s: %v", raw, err)
	}
	block := ":rotating_light: *FIRING* model *fraud*, metric *psi*\n" +
		"Feature: `amount`\nSegment: `region=eu`\nValue: *0.31* (threshold 0.2), window 1h\n" +
		"Since: 2025-03-01T12:00:00Z\namount drifted\n" +
		"```\nSELECT psi FROM vigil_drift WHERE model = 'fraud' AND x &lt; 1\n```"
	resolvedBlock := ":white_check_mark: *RESOLVED* model *fraud*, metric *psi*\n" +
		"Feature: `amount`\nSegment: `region=eu`\nValue: *0.31* (threshold 0.2), window 1h\n" +
		"Since: 2025-03-01T12:00:00Z\nEnded: 2025-03-01T13:00:00Z\namount drifted\n" +
		"```\nSELECT psi FROM vigil_drift WHERE model = 'fraud' AND x &lt; 1\n```"
	if want := block + "\n\n" + resolvedBlock; body["text"] != want {
		t.Errorf("text\n got %q\nwant %q", body["text"], want)
	}
}

func TestPagerDutyEncode(t *testing.T) {
	p, err := NewPagerDuty(PagerDutyConfig{URL: "http://pd.test/v2/enqueue", RoutingKey: "R0UTING"})
	if err != nil {
		t.Fatal(err)
	}
	if def, _ := NewPagerDuty(PagerDutyConfig{RoutingKey: "x"}); def.url.String() != DefaultPagerDutyURL {
		t.Errorf("default url %s", def.url)
	}
	tests := []struct {
		name  string
		alert Alert
		want  string
	}{
		{"trigger", firing(), `{"routing_key":"R0UTING","event_action":"trigger","dedup_key":"vigil-fp1","payload":{` +
			`"summary":"fraud: psi of amount [region=eu] is 0.31 (threshold 0.2, window 1h)","source":"vigil/fraud","severity":"critical",` +
			`"custom_details":{"annotations":{"summary":"amount drifted"},"feature":"amount","labels":{"alertname":"AmountDrift","severity":"critical"},` +
			`"metric":"psi","model":"fraud","segment":"region=eu","sql":"SELECT psi FROM vigil_drift WHERE model = 'fraud' AND x < 1",` +
			`"starts_at":"2025-03-01T12:00:00Z","threshold":0.2,"value":0.31,"window":"1h"}}}`},
		{"resolve", resolved(), `{"routing_key":"R0UTING","event_action":"resolve","dedup_key":"vigil-fp1"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := p.Encode([]Alert{tt.alert})
			if err != nil {
				t.Fatal(err)
			}
			if got := string(readBody(t, req)); got != tt.want {
				t.Errorf("body\n got %s\nwant %s", got, tt.want)
			}
			if req.URL.String() != "http://pd.test/v2/enqueue" {
				t.Errorf("url %s", req.URL)
			}
		})
	}
	if _, err := p.Encode([]Alert{firing(), firing()}); !errors.Is(err, ErrInvalidAlert) {
		t.Errorf("two alerts: %v", err)
	}
	noFP := firing()
	noFP.Fingerprint = ""
	if DedupKey(noFP) != DedupKey(cloneAlert(noFP)) || DedupKey(noFP) == "vigil-" {
		t.Errorf("derived dedup key not stable: %s", DedupKey(noFP))
	}
}

// The receiver configs never show a secret, however printed.
func TestSecretsRedacted(t *testing.T) {
	configs := []any{
		SignedWebhookConfig{Name: "w", URL: "http://h.test/TOPSECRETURL", Secret: "TOPSECRETHMAC"},
		AlertmanagerConfig{Name: "a", URL: "http://h.test/TOPSECRETURL"},
		SlackConfig{Name: "s", URL: "http://h.test/TOPSECRETURL"},
		PagerDutyConfig{Name: "p", URL: "http://h.test/TOPSECRETURL", RoutingKey: "TOPSECRETKEY"},
	}
	for _, c := range configs {
		js, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{c.(interface{ String() string }).String(), string(js), sprintAll(c)} {
			if strings.Contains(s, "TOPSECRET") {
				t.Errorf("secret leaked: %s", s)
			}
			if !strings.Contains(s, "[redacted]") {
				t.Errorf("no redaction marker: %s", s)
			}
		}
	}
}
