package webhook

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"

	"github.com/vigil-ml/vigil/internal/secret"
)

// Secret is a configured secret (literal, env:VAR or file:/path); see
// internal/secret. The rules file's receiver configs use the same type.
type Secret = secret.Secret

// resolveURL resolves a secret URL and checks that it is absolute http(s).
func resolveURL(field string, s Secret) (*url.URL, error) {
	v, err := s.Resolve()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// Do not echo the URL: it may carry a token (Slack).
		return nil, fmt.Errorf("%s (%s): not an absolute http(s) URL", field, s)
	}
	return u, nil
}

// marshal is json.Marshal without HTML escaping (SQL keeps its "<") and
// without the trailing newline of json.Encoder.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
