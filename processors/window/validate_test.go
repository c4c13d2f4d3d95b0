package window

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestValidateReportsEveryProblem(t *testing.T) {
	err := Config{Size: 10 * time.Millisecond, AllowedLateness: -time.Second}.Validate()
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Validate() = %v, not ErrInvalidConfig", err)
	}
	for _, w := range []string{"window size 10ms is below 1s", "allowed lateness -1s is negative"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
	if n := strings.Count(err.Error(), "\n") + 1; n != 2 {
		t.Errorf("%d lines, want 2:\n%v", n, err)
	}
}
