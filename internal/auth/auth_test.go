package auth

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	t.Setenv("VIGIL_TEST_TOKEN_A", "secret-a")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "b"), []byte("secret-b\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, yaml string
		err        string // "" = valid
	}{
		{"three sources", "tokens:\n  - {token: env:VIGIL_TEST_TOKEN_A, name: a, models: [fraud], rate: 10}\n  - {token: file:" + filepath.Join(dir, "b") + ", name: b}\n  - {token: lit, name: c}\n", ""},
		{"empty", "tokens: []\n", "no tokens"},
		{"unknown key", "tokens:\n  - {token: x, name: a, modles: [fraud]}\n", "field modles not found"},
		{"no name", "tokens:\n  - {token: x}\n", "no name"},
		{"name twice", "tokens:\n  - {token: x, name: a}\n  - {token: y, name: a}\n", "name given twice"},
		{"value twice", "tokens:\n  - {token: x, name: a}\n  - {token: x, name: b}\n", "same token value"},
		{"unset env", "tokens:\n  - {token: env:VIGIL_TEST_TOKEN_UNSET, name: a}\n", "VIGIL_TEST_TOKEN_UNSET is not set"},
		{"negative rate", "tokens:\n  - {token: x, name: a, rate: -1}\n", "rate -1"},
		{"no value", "tokens:\n  - {name: a}\n", "no token value"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			toks, err := Parse([]byte(c.yaml))
			if c.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				if got := strings.Join(toks.Names(), ","); got != "a,b,c" {
					t.Errorf("names %q", got)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Fatalf("error %v, want one containing %q", err, c.err)
			}
			if strings.Contains(err.Error(), "secret-") {
				t.Errorf("error reveals a token value: %v", err)
			}
		})
	}
}

func TestCheckAndMiddleware(t *testing.T) {
	toks, err := Parse([]byte("tokens:\n  - {token: tok-a, name: a, models: [fraud]}\n  - {token: tok-b, name: b}\n"))
	if err != nil {
		t.Fatal(err)
	}
	h := toks.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := FromContext(r.Context())
		w.Header().Set("X-Token", tok.Name)
		if tok.AllowsModel("fraud") {
			w.Header().Set("X-Fraud", "yes")
		}
	}))
	cases := []struct {
		auth, status, token, fraud string
	}{
		{"", "401", "", ""},
		{"Basic dG9rLWE=", "401", "", ""},
		{"Bearer ", "401", "", ""},
		{"Bearer tok-c", "401", "", ""},
		{"Bearer tok-a", "200", "a", "yes"},
		{"bearer  tok-b ", "200", "b", "yes"},
	}
	for _, c := range cases {
		r := httptest.NewRequest("GET", "/", nil)
		if c.auth != "" {
			r.Header.Set("Authorization", c.auth)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if got := w.Result().Status[:3]; got != c.status || w.Header().Get("X-Token") != c.token || w.Header().Get("X-Fraud") != c.fraud {
			t.Errorf("%q: status %s token %q fraud %q, want %s %q %q", c.auth, got, w.Header().Get("X-Token"), w.Header().Get("X-Fraud"), c.status, c.token, c.fraud)
		}
		if c.status == "401" && w.Header().Get("WWW-Authenticate") == "" {
			t.Errorf("%q: 401 without WWW-Authenticate", c.auth)
		}
	}
	restricted, _ := toks.Check(withAuth("Bearer tok-a"))
	if restricted.AllowsModel("churn") || !restricted.AllowsModel("fraud") {
		t.Errorf("token a allows %v, want only fraud", restricted.Models)
	}
	var none *Tokens
	if tok, err := none.Check(httptest.NewRequest("GET", "/", nil)); err != nil || tok != Anonymous || !tok.AllowsModel("any") {
		t.Errorf("no tokens: %v, %v; want Anonymous", tok, err)
	}
}

func TestReserve(t *testing.T) {
	toks, err := Parse([]byte("tokens:\n  - {token: t, name: a, rate: 10}\n"))
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := toks.Check(withAuth("Bearer t"))
	if _, ok := tok.Reserve(10); !ok {
		t.Fatal("the first 10 items (the burst) were refused")
	}
	if d, ok := tok.Reserve(5); ok || d != time.Second {
		t.Errorf("5 more items: ok %v retry after %v, want refused, 1s", ok, d)
	}
	if d, ok := tok.Reserve(25); ok || d != time.Second {
		t.Errorf("25 items (over the burst of 10): ok %v retry after %v, want refused, 1s", ok, d)
	}
	if _, ok := Anonymous.Reserve(1 << 30); !ok {
		t.Error("Anonymous is rate limited")
	}
}

func withAuth(h string) *http.Request {
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", h)
	return r
}
