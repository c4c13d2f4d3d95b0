package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
)

// Secret is a configured secret: a literal value, "env:VAR" (read from the
// environment) or "file:/path" (read from a file, trailing newline removed,
// as mounted by Kubernetes or Docker secrets). A literal cannot start with
// "env:" or "file:". String and MarshalJSON never reveal a literal value;
// references ("env:VAR", "file:/path") are shown since they are not secret.
type Secret string

const redacted = "[redacted]"

// Resolve returns the secret's value. Errors name the reference, never the value.
func (s Secret) Resolve() (string, error) {
	raw := string(s)
	switch {
	case strings.HasPrefix(raw, "env:"):
		name := strings.TrimPrefix(raw, "env:")
		v, ok := os.LookupEnv(name)
		if !ok || v == "" {
			return "", fmt.Errorf("resolve secret %s: environment variable %s is not set", raw, name)
		}
		return v, nil
	case strings.HasPrefix(raw, "file:"):
		path := strings.TrimPrefix(raw, "file:")
		b, err := os.ReadFile(path)
		if err != nil {
			var pe *os.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			return "", fmt.Errorf("resolve secret %s: %w", raw, err)
		}
		v := strings.TrimRight(string(b), "\r\n")
		if v == "" {
			return "", fmt.Errorf("resolve secret %s: the file is empty", raw)
		}
		return v, nil
	default:
		return raw, nil
	}
}

// IsSet reports whether a value or reference is configured.
func (s Secret) IsSet() bool { return s != "" }

// String shows references as they are and literal values as "[redacted]".
func (s Secret) String() string {
	raw := string(s)
	switch {
	case raw == "":
		return ""
	case strings.HasPrefix(raw, "env:"), strings.HasPrefix(raw, "file:"):
		return raw
	default:
		return redacted
	}
}

// GoString keeps %#v from printing the literal.
func (s Secret) GoString() string { return fmt.Sprintf("webhook.Secret(%q)", s.String()) }

// MarshalJSON encodes String, so a logged or dumped config is redacted.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// MarshalText encodes String (YAML and text encoders).
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText keeps the configured text as is (MarshalText redacts, so the
// two are deliberately not symmetric).
func (s *Secret) UnmarshalText(b []byte) error { *s = Secret(b); return nil }

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
