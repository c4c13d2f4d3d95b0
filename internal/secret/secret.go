// Package secret holds Secret, a configured secret that names where its
// value is (literal, env:VAR, file:/path) and never prints the value. The
// rules file's receiver configs (processors/alerting) and the receivers that
// resolve them (sinks/webhook) share it.
package secret

import (
	"encoding/json"
	"errors"
	"fmt"
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
func (s Secret) GoString() string { return fmt.Sprintf("secret.Secret(%q)", s.String()) }

// MarshalJSON encodes String, so a logged or dumped config is redacted.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// MarshalText encodes String (YAML and text encoders).
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText keeps the configured text as is (MarshalText redacts, so the
// two are deliberately not symmetric).
func (s *Secret) UnmarshalText(b []byte) error { *s = Secret(b); return nil }
