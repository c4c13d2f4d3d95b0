package clickhouse

import (
	"strings"
	"testing"
	"time"
)

func TestValidateReportsEveryProblem(t *testing.T) {
	err := Config{Addr: "127.0.0.1:8123", Database: "1bad", DialTimeout: -time.Second}.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, w := range []string{"8123 is the HTTP port", `clickhouse database: `, "dial timeout -1s is negative"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
	if n := strings.Count(err.Error(), "\n") + 1; n != 3 {
		t.Errorf("%d lines, want 3:\n%v", n, err)
	}
}
