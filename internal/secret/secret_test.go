package secret

import (
	"os"
	"path/filepath"
	"testing"
)

func TestSecret(t *testing.T) {
	t.Setenv("VIGIL_TEST_HMAC", "from-env")
	path := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(path, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		secret  Secret
		want    string
		wantErr bool
		shown   string
	}{
		{"literal", "literal", false, "[redacted]"},
		{"env:VIGIL_TEST_HMAC", "from-env", false, "env:VIGIL_TEST_HMAC"},
		{"env:VIGIL_TEST_UNSET_VAR", "", true, "env:VIGIL_TEST_UNSET_VAR"},
		{Secret("file:" + path), "from-file", false, "file:" + path},
		{"file:/nonexistent/vigil", "", true, "file:/nonexistent/vigil"},
	}
	for _, tt := range tests {
		got, err := tt.secret.Resolve()
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("%s: Resolve = %q, %v", tt.shown, got, err)
		}
		if tt.secret.String() != tt.shown {
			t.Errorf("String = %q, want %q", tt.secret.String(), tt.shown)
		}
	}
}
