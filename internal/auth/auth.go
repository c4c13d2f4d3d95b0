// Package auth checks the bearer tokens of Vigil's HTTP routes (the
// gateway's /v1/ routes, the UI's /ui/).
//
// The tokens come from a YAML file (Load):
//
//	tokens:
//	  - token: env:VIGIL_TOKEN_A   # internal/secret: a literal, env:VAR or file:/path
//	    name: team-a               # in logs and metrics, never the token itself
//	    models: [fraud]            # optional: only these models; empty = all
//	    rate: 5000                 # optional: items/s for this token (burst = rate); 0 = unlimited
//
// A request carries one as "Authorization: Bearer <token>". Tokens.Check
// finds the Token of a request (ErrNoToken, ErrUnknownToken); Middleware
// answers 401 for those and puts the Token in the request's context
// (FromContext). A nil *Tokens means no authentication: every request gets
// Anonymous, which allows every model at any rate.
//
// Token values are kept only as SHA-256 digests and compared through them,
// so a lookup's timing says nothing about a token's prefix. Everything here
// is safe for concurrent use; a Token's rate limiter is shared by every
// request that presents it.
package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/time/rate"
	"gopkg.in/yaml.v3"

	"github.com/vigil-ml/vigil/internal/secret"
)

// ErrNoToken is returned by Check for a request without an
// "Authorization: Bearer" header.
var ErrNoToken = errors.New("no bearer token (send Authorization: Bearer <token>)")

// ErrUnknownToken is returned by Check for a bearer token that is not in the
// tokens file.
var ErrUnknownToken = errors.New("unknown bearer token")

// Token is one configured token: its name and what it may do. The zero
// value is not usable; tokens come from Load, Parse or Anonymous.
type Token struct {
	// Name identifies the token in logs and metrics.
	Name string
	// Models the token may publish for; empty: every model.
	Models []string
	// Rate is the token's limit in items per second (burst = rate); 0:
	// unlimited.
	Rate float64

	limiter *rate.Limiter // nil: unlimited
}

// Anonymous is the token of every request when there is no tokens file.
var Anonymous = &Token{Name: "anonymous"}

// AllowsModel reports whether the token may publish for model.
func (t *Token) AllowsModel(model string) bool {
	return len(t.Models) == 0 || slices.Contains(t.Models, model)
}

// Reserve takes n items from the token's rate budget. When the budget does
// not hold them now, nothing is taken and it returns false and how long to
// wait before n items fit (at least a second, in whole seconds, as
// Retry-After says it); a request of more items than the burst never fits
// and gets the time to refill the whole burst.
func (t *Token) Reserve(n int) (retryAfter time.Duration, ok bool) {
	if t.limiter == nil || n <= 0 {
		return 0, true
	}
	now := time.Now()
	r := t.limiter.ReserveN(now, n)
	if !r.OK() {
		return roundUpSecond(time.Duration(float64(time.Second) * float64(t.limiter.Burst()) / t.Rate)), false
	}
	d := r.DelayFrom(now)
	if d == 0 {
		return 0, true
	}
	r.CancelAt(now)
	return roundUpSecond(d), false
}

// Burst is the most items one request may carry under the token's rate; 0:
// unlimited.
func (t *Token) Burst() int {
	if t.limiter == nil {
		return 0
	}
	return t.limiter.Burst()
}

func roundUpSecond(d time.Duration) time.Duration {
	s := math.Ceil(d.Seconds())
	if s < 1 {
		s = 1
	}
	return time.Duration(s) * time.Second
}

// Tokens is a set of tokens by value. A nil *Tokens authenticates every
// request as Anonymous.
type Tokens struct {
	byDigest map[[sha256.Size]byte]*Token
	list     []*Token
}

// file is the YAML layout of a tokens file.
type file struct {
	Tokens []struct {
		Token  secret.Secret `yaml:"token"`
		Name   string        `yaml:"name"`
		Models []string      `yaml:"models"`
		Rate   float64       `yaml:"rate"`
	} `yaml:"tokens"`
}

// Load reads a tokens file (YAML, strict: unknown keys are errors) and
// resolves every token's secret.
func Load(path string) (*Tokens, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read tokens file: %w", err)
	}
	t, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("tokens file %s: %w", path, err)
	}
	return t, nil
}

// Parse decodes the YAML of a tokens file (see the package doc). Every
// token needs a value and a unique name; a value may not come twice; rate
// must be >= 0 (a fractional rate below 1 gets a burst of 1).
func Parse(data []byte) (*Tokens, error) {
	var f file
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if len(f.Tokens) == 0 {
		return nil, errors.New("no tokens (want a list under tokens:)")
	}
	t := &Tokens{byDigest: map[[sha256.Size]byte]*Token{}}
	names := map[string]bool{}
	var errs []error
	for i, ft := range f.Tokens {
		bad := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf("tokens[%d] (%s): "+format, append([]any{i, ft.Name}, args...)...))
		}
		if ft.Name == "" {
			bad("no name (the name stands for the token in logs and metrics)")
		} else if names[ft.Name] {
			bad("name given twice")
		}
		names[ft.Name] = true
		if !(ft.Rate >= 0) || math.IsInf(ft.Rate, 0) {
			bad("rate %v (want >= 0 items/s; 0: unlimited)", ft.Rate)
			continue
		}
		if !ft.Token.IsSet() {
			bad("no token value (a literal, env:VAR or file:/path)")
			continue
		}
		v, err := ft.Token.Resolve()
		if err != nil {
			bad("%v", err)
			continue
		}
		d := sha256.Sum256([]byte(v))
		if _, dup := t.byDigest[d]; dup {
			bad("same token value as an earlier entry")
			continue
		}
		tok := &Token{Name: ft.Name, Models: ft.Models, Rate: ft.Rate}
		if ft.Rate > 0 {
			tok.limiter = rate.NewLimiter(rate.Limit(ft.Rate), max(1, int(ft.Rate)))
		}
		t.byDigest[d] = tok
		t.list = append(t.list, tok)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return t, nil
}

// Names are the tokens' names, in file order.
func (t *Tokens) Names() []string {
	if t == nil {
		return nil
	}
	out := make([]string, len(t.list))
	for i, tok := range t.list {
		out[i] = tok.Name
	}
	return out
}

// Check returns the Token of r's bearer token: Anonymous when t is nil,
// else ErrNoToken or ErrUnknownToken when r has none or an unknown one.
func (t *Tokens) Check(r *http.Request) (*Token, error) {
	if t == nil {
		return Anonymous, nil
	}
	h := r.Header.Get("Authorization")
	scheme, value, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(value) == "" {
		return nil, ErrNoToken
	}
	tok, ok := t.byDigest[sha256.Sum256([]byte(strings.TrimSpace(value)))]
	if !ok {
		return nil, ErrUnknownToken
	}
	return tok, nil
}

// Unauthorized writes the 401 answer for err (ErrNoToken or
// ErrUnknownToken): a WWW-Authenticate challenge and a JSON error.
func Unauthorized(w http.ResponseWriter, err error) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="vigil"`)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusUnauthorized)
	fmt.Fprintf(w, "{\"error\":%q}\n", err.Error())
}

type ctxKey struct{}

// Middleware answers 401 for a request without a known token and passes
// the others to next, with their Token in the context (FromContext).
func (t *Tokens) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, err := t.Check(r)
		if err != nil {
			Unauthorized(w, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, tok)))
	})
}

// FromContext is the Token Middleware put in ctx, or nil.
func FromContext(ctx context.Context) *Token {
	tok, _ := ctx.Value(ctxKey{}).(*Token)
	return tok
}
