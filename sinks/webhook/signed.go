package webhook

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Headers of the signed webhook.
const (
	HeaderTimestamp = "X-Vigil-Timestamp"
	HeaderSignature = "X-Vigil-Signature"
	signaturePrefix = "sha256="
)

// SignedWebhookConfig configures the generic JSON webhook.
type SignedWebhookConfig struct {
	// Name of the receiver; default "webhook".
	Name string `yaml:"name" json:"name"`
	// URL receives the POST.
	URL Secret `yaml:"url" json:"url"`
	// Secret is the HMAC-SHA256 key shared with the receiver.
	Secret Secret `yaml:"secret" json:"secret"`
}

// Validate checks that the required fields are set (it does not resolve them).
func (c SignedWebhookConfig) Validate() error {
	if !c.URL.IsSet() {
		return fmt.Errorf("webhook receiver %q: url is required", c.Name)
	}
	if !c.Secret.IsSet() {
		return fmt.Errorf("webhook receiver %q: secret is required (generate one with: openssl rand -hex 32)", c.Name)
	}
	return nil
}

func (c SignedWebhookConfig) String() string {
	return fmt.Sprintf("webhook{name=%s url=%s secret=%s}", c.Name, c.URL, c.Secret)
}

// SignedWebhook posts {"version":"1","alerts":[...]} signed with HMAC-SHA256.
type SignedWebhook struct {
	name   string
	url    *url.URL
	secret []byte
	now    func() time.Time
}

var _ Receiver = (*SignedWebhook)(nil)

// NewSignedWebhook resolves the config's secrets.
func NewSignedWebhook(cfg SignedWebhookConfig) (*SignedWebhook, error) {
	if cfg.Name == "" {
		cfg.Name = "webhook"
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	u, err := resolveURL("webhook receiver "+cfg.Name+" url", cfg.URL)
	if err != nil {
		return nil, err
	}
	secret, err := cfg.Secret.Resolve()
	if err != nil {
		return nil, fmt.Errorf("webhook receiver %s secret: %w", cfg.Name, err)
	}
	return &SignedWebhook{name: cfg.Name, url: u, secret: []byte(secret), now: time.Now}, nil
}

func (w *SignedWebhook) Name() string  { return w.name }
func (w SignedWebhook) String() string { return "webhook " + w.name }

type signedBody struct {
	Version string  `json:"version"`
	Alerts  []Alert `json:"alerts"`
}

func (w *SignedWebhook) Encode(group []Alert) (*http.Request, error) {
	alerts := make([]Alert, len(group))
	for i, a := range group {
		a = cloneAlert(a)
		a.Fingerprint = a.Key()
		a.StartsAt, a.EndsAt = a.StartsAt.UTC(), a.EndsAt.UTC()
		if a.Labels == nil {
			a.Labels = map[string]string{}
		}
		if a.Annotations == nil {
			a.Annotations = map[string]string{}
		}
		alerts[i] = a
	}
	body, err := marshal(signedBody{Version: "1", Alerts: alerts})
	if err != nil {
		return nil, fmt.Errorf("encode webhook body: %v: %w", err, ErrInvalidAlert)
	}
	ts := strconv.FormatInt(w.now().Unix(), 10)
	req, err := http.NewRequest(http.MethodPost, w.url.String(), bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("build webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "vigil-webhook/1")
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, Sign(w.secret, ts, body))
	return req, nil
}

// Sign returns the X-Vigil-Signature value for a body sent at timestamp
// (Unix seconds, as sent in X-Vigil-Timestamp):
// "sha256=" + hex(HMAC-SHA256(secret, timestamp + "." + body)).
func Sign(secret []byte, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(timestamp))
	mac.Write([]byte("."))
	mac.Write(body)
	return signaturePrefix + hex.EncodeToString(mac.Sum(nil))
}

// Verify checks a signed webhook on the receiving side: timestamp and
// signature are the X-Vigil-Timestamp and X-Vigil-Signature headers, body the
// raw request body (before any JSON decoding). It fails with
// ErrStaleTimestamp when the timestamp is more than tolerance away from now
// (replay protection; 5 minutes is a reasonable tolerance) and with
// ErrBadSignature when the signature does not match. The comparison takes
// constant time.
func Verify(secret, timestamp, signature string, body []byte, now time.Time, tolerance time.Duration) error {
	sec, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("parse %s %q: %w", HeaderTimestamp, timestamp, ErrStaleTimestamp)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%s is %s away from now, tolerance %s: %w", HeaderTimestamp, d.Round(time.Second), tolerance, ErrStaleTimestamp)
	}
	hexSig, ok := strings.CutPrefix(signature, signaturePrefix)
	if !ok {
		return fmt.Errorf("%s does not start with %q: %w", HeaderSignature, signaturePrefix, ErrBadSignature)
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return fmt.Errorf("decode %s: %w", HeaderSignature, ErrBadSignature)
	}
	want, _ := hex.DecodeString(strings.TrimPrefix(Sign([]byte(secret), timestamp, body), signaturePrefix))
	if !hmac.Equal(got, want) {
		return ErrBadSignature
	}
	return nil
}
