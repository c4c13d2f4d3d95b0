package backoff

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestCeiling(t *testing.T) {
	p := Policy{Base: 100 * time.Millisecond, Max: time.Second}
	for _, tt := range []struct {
		attempt int
		want    time.Duration
	}{
		{1, 100 * time.Millisecond},
		{2, 200 * time.Millisecond},
		{3, 400 * time.Millisecond},
		{4, 800 * time.Millisecond},
		{5, time.Second},
		{60, time.Second}, // no overflow however long it fails
		{0, 100 * time.Millisecond},
	} {
		if got := p.Ceiling(tt.attempt); got != tt.want {
			t.Errorf("Ceiling(%d) = %v, want %v", tt.attempt, got, tt.want)
		}
	}
}

func TestDelayFullJitter(t *testing.T) {
	p := Policy{Base: 10 * time.Millisecond, Max: 80 * time.Millisecond}
	for attempt := 1; attempt <= 6; attempt++ {
		c := p.Ceiling(attempt)
		var lo, hi time.Duration = c, 0
		for range 2000 {
			d := p.Delay(attempt)
			if d < 0 || d > c {
				t.Fatalf("Delay(%d) = %v outside [0, %v]", attempt, d, c)
			}
			lo, hi = min(lo, d), max(hi, d)
		}
		// Full jitter covers the whole range: with 2000 draws the extremes
		// fall within 1% of either end.
		if lo > c/100 || hi < c-c/100 {
			t.Errorf("Delay(%d) drew [%v, %v], want about [0, %v]", attempt, lo, hi, c)
		}
	}
	if d := (Policy{}).Delay(3); d != 0 {
		t.Errorf("zero policy Delay = %v, want 0", d)
	}
}

func TestBackoffCountsAndResets(t *testing.T) {
	b := New(Policy{Base: time.Millisecond, Max: 4 * time.Millisecond})
	for i := 1; i <= 5; i++ {
		if d := b.Next(); d > b.Ceiling(i) {
			t.Fatalf("Next #%d = %v above %v", i, d, b.Ceiling(i))
		}
	}
	if b.Attempt() != 5 {
		t.Fatalf("Attempt = %d, want 5", b.Attempt())
	}
	b.Reset()
	if b.Attempt() != 0 {
		t.Fatalf("Attempt after Reset = %d, want 0", b.Attempt())
	}
}

func TestSleepEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	began := time.Now()
	if err := Sleep(ctx, time.Minute); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Sleep = %v, want deadline exceeded", err)
	}
	if took := time.Since(began); took > time.Second {
		t.Fatalf("Sleep took %v after its context ended", took)
	}
	if err := Sleep(context.Background(), time.Millisecond); err != nil {
		t.Fatalf("Sleep = %v, want nil", err)
	}
}

var errTransient = errors.New("transient")

func TestRetry(t *testing.T) {
	p := Policy{Base: time.Millisecond, Max: 2 * time.Millisecond}
	errBad := errors.New("bad input")
	for _, tt := range []struct {
		name      string
		fails     []error // f's results before it succeeds
		retryable func(error) bool
		wantCalls int
		wantErr   error
	}{
		{"first try", nil, nil, 1, nil},
		{"transient then ok", []error{errTransient, errTransient, errTransient}, nil, 4, nil},
		{"permanent stops", []error{errTransient, Permanent(errBad)}, nil, 2, errBad},
		{"wrapped permanent stops", []error{fmt.Errorf("write: %w", Permanent(errBad))}, nil, 1, errBad},
		{"classifier stops", []error{errTransient, errBad}, func(err error) bool { return !errors.Is(err, errBad) }, 2, errBad},
	} {
		t.Run(tt.name, func(t *testing.T) {
			calls, notified := 0, 0
			err := p.Retry(context.Background(), func(context.Context) error {
				calls++
				if calls <= len(tt.fails) {
					return tt.fails[calls-1]
				}
				return nil
			}, tt.retryable, func(attempt int, err error, wait time.Duration) {
				notified++
				if attempt != notified || wait > p.Ceiling(attempt) {
					t.Errorf("notify(%d, %v, %v) as call %d", attempt, err, wait, notified)
				}
			})
			if calls != tt.wantCalls {
				t.Errorf("calls = %d, want %d", calls, tt.wantCalls)
			}
			if (tt.wantErr == nil) != (err == nil) || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
				t.Errorf("Retry = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr == nil && notified != calls-1 {
				t.Errorf("notified %d times, want %d", notified, calls-1)
			}
		})
	}
}

func TestRetryEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	calls := 0
	err := Policy{Base: time.Millisecond, Max: 5 * time.Millisecond}.Retry(ctx, func(context.Context) error {
		calls++
		return errTransient
	}, nil, nil)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, errTransient) {
		t.Fatalf("Retry = %v, want the deadline and the last error", err)
	}
	if calls < 2 {
		t.Fatalf("calls = %d, want retries until the deadline", calls)
	}
}

func TestIsPermanent(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errTransient, false},
		{Permanent(errTransient), true},
		{fmt.Errorf("a: %w", Permanent(errTransient)), true},
		{errors.Join(errTransient, Permanent(errTransient)), true},
	} {
		if got := IsPermanent(tt.err); got != tt.want {
			t.Errorf("IsPermanent(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
	if Permanent(nil) != nil {
		t.Error("Permanent(nil) != nil")
	}
}
