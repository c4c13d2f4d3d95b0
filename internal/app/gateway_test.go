package app

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vigil-ml/vigil/internal/testenv"
)

// selfSigned writes a certificate for 127.0.0.1 and its key; it returns
// their paths and a pool that trusts the certificate.
func selfSigned(t *testing.T) (certPath, keyPath string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "vigil-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certPath, keyPath = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certPath, keyPath, pool
}

// The gateway's stack on the real Kafka, over TLS with a token: ready
// once Kafka answers, every route on one address, plain HTTP refused, and
// a shutdown that delivers what it accepted.
func TestGatewayTLS(t *testing.T) {
	brokers := []string{testenv.Kafka(t)}
	certPath, keyPath, pool := selfSigned(t)
	tokens := filepath.Join(t.TempDir(), "tokens.yaml")
	if err := os.WriteFile(tokens, []byte("tokens:\n  - {token: s3cret, name: team-a, models: [fraud]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	topic := "vigil-app-gateway-" + strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	ctx := context.Background()
	g, err := StartGateway(ctx, GatewayConfig{Brokers: brokers, Topic: topic, Partitions: 1, Addr: "127.0.0.1:0",
		TLSCert: certPath, TLSKey: keyPath, Tokens: tokens}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = g.Shutdown(ctx) }()
	transport := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	defer transport.CloseIdleConnections()
	c := &http.Client{Transport: transport, Timeout: 10 * time.Second}
	base := "https://" + g.Addr()
	do := func(method, path, token, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if status, body := do("GET", "/readyz", "", ""); status != 200 {
		t.Fatalf("/readyz %d %s", status, body)
	}
	ev := `{"event_id":"e-1","model":"fraud","event_time":"2026-11-26T10:00:00Z","features":{"amount":1},"prediction":{"score":0.5}}`
	if status, body := do("POST", "/v1/events", "", ev); status != 401 {
		t.Errorf("no token: %d %s", status, body)
	}
	if status, body := do("POST", "/v1/events", "s3cret", ev); status != 200 || body != "{\"accepted\":1,\"rejected\":[]}\n" {
		t.Errorf("event: %d %s", status, body)
	}
	// The serving converter's routes are mounted only with a serving config.
	if status, _ := do("POST", "/v1/cloudevents", "s3cret", "{}"); status != 404 {
		t.Errorf("/v1/cloudevents without a serving config: %d, want 404", status)
	}
	_, metrics := do("GET", "/metrics", "", "")
	for _, want := range []string{`vigil_gateway_requests_total{route="events",status="401"} 1`, `vigil_gateway_token_requests_total{status="200",token="team-a"} 1`, "vigil_sdk_events_recorded_total 1", "go_goroutines"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics has no %q", want)
		}
	}
	// Plain HTTP on the TLS port gets no answer of the routes.
	if resp, err := http.Post("http://"+g.Addr()+"/v1/events", "application/json", strings.NewReader(ev)); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || strings.Contains(string(b), "accepted") {
			t.Errorf("plain HTTP: %d %s, want the TLS server's 400", resp.StatusCode, b)
		}
	}
	transport.CloseIdleConnections()
	if err := g.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if err := g.Shutdown(ctx); err != nil {
		t.Errorf("second shutdown: %v", err)
	}
}
