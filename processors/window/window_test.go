package window

import (
	"errors"
	"math"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		c    Config
		ok   bool
	}{
		{"default", DefaultConfig(), true},
		{"1s no lateness", Config{Size: time.Second}, true},
		{"1500ms", Config{Size: 1500 * time.Millisecond}, true},
		{"zero size", Config{}, false},
		{"below 1s", Config{Size: 999 * time.Millisecond}, false},
		{"fractional ms", Config{Size: time.Second + time.Microsecond}, false},
		{"negative lateness", Config{Size: time.Minute, AllowedLateness: -time.Millisecond}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.c.Validate()
			if (err == nil) != tt.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("Validate() = %v, not ErrInvalidConfig", err)
			}
		})
	}
}

func TestStartEnd(t *testing.T) {
	c := Config{Size: 10 * time.Second}
	tests := []struct {
		t, start int64
	}{
		{0, 0},
		{1, 0},
		{9_999, 0},
		{10_000, 10_000}, // exactly at the end of [0,10s): next window
		{10_001, 10_000},
		{-1, -10_000},
		{-9_999, -10_000},
		{-10_000, -10_000},
		{-10_001, -20_000},
		{1_700_000_012_345, 1_700_000_010_000},
		{math.MaxInt64, math.MaxInt64 - math.MaxInt64%10_000},
		{math.MinInt64, math.MinInt64}, // not representable: saturates
	}
	for _, tt := range tests {
		if got := c.Start(tt.t); got != tt.start {
			t.Errorf("Start(%d) = %d, want %d", tt.t, got, tt.start)
		}
	}
	if got := c.End(-10_000); got != 0 {
		t.Errorf("End(-10000) = %d, want 0", got)
	}
	if got := c.End(math.MaxInt64 - 5); got != math.MaxInt64 {
		t.Errorf("End near MaxInt64 = %d, want saturation", got)
	}
}

func TestStartPanicsWithoutValidate(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("Start with zero size did not panic")
		}
	}()
	Config{}.Start(1)
}

// step is one event observed by a partition, in processing order.
type step struct {
	t        int64
	late     bool  // expected Late(t) before Observe
	wm       int64 // expected watermark after Observe
	closedTo int64 // windows with start < closedTo are closed after Observe, the one at closedTo is open
}

func TestWatermark(t *testing.T) {
	const none = math.MinInt64
	tests := []struct {
		name    string
		c       Config
		initial int64
		steps   []step
	}{
		{
			name:    "lateness 0: event exactly at window end closes it",
			c:       Config{Size: 10 * time.Second},
			initial: none,
			steps: []step{
				{t: 5_000, wm: 5_000, closedTo: 0},
				{t: 9_999, wm: 9_999, closedTo: 0},
				{t: 10_000, wm: 10_000, closedTo: 10_000}, // [0,10s) closed, [10s,20s) open
				{t: 9_999, late: true, wm: 10_000, closedTo: 10_000},
				{t: 10_000, wm: 10_000, closedTo: 10_000}, // exactly at watermark: own window open
			},
		},
		{
			name:    "out of order within lateness is not late",
			c:       Config{Size: 10 * time.Second, AllowedLateness: 5 * time.Second},
			initial: none,
			steps: []step{
				{t: 12_000, wm: 7_000, closedTo: 0},
				{t: 3_000, wm: 7_000, closedTo: 0}, // 9s behind, but [0,10s) still open
				{t: 14_999, wm: 9_999, closedTo: 0},
				{t: 15_000, wm: 10_000, closedTo: 10_000},
				{t: 9_999, late: true, wm: 10_000, closedTo: 10_000},
				{t: 10_000, wm: 10_000, closedTo: 10_000}, // at the watermark: open window
			},
		},
		{
			name:    "negative times",
			c:       Config{Size: 10 * time.Second, AllowedLateness: time.Second},
			initial: none,
			steps: []step{
				{t: -15_000, wm: -16_000, closedTo: -20_000},
				{t: -9_000, wm: -10_000, closedTo: -10_000},
				{t: -10_001, late: true, wm: -10_000, closedTo: -10_000},
				{t: -10_000, wm: -10_000, closedTo: -10_000},
			},
		},
		{
			name:    "restored watermark",
			c:       Config{Size: 10 * time.Second, AllowedLateness: 30 * time.Second},
			initial: 20_000,
			steps: []step{
				{t: 19_999, late: true, wm: 20_000, closedTo: 20_000},
				{t: 20_000, wm: 20_000, closedTo: 20_000},
				{t: 40_000, wm: 20_000, closedTo: 20_000}, // 40s-30s < restored: no move back
				{t: 61_000, wm: 31_000, closedTo: 30_000},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := NewWatermark(tt.c, tt.initial)
			for i, s := range tt.steps {
				if got := w.Late(s.t); got != s.late {
					t.Errorf("step %d: Late(%d) = %v, want %v", i, s.t, got, s.late)
				}
				w.Observe(s.t)
				if w.Late(s.t) != s.late {
					t.Errorf("step %d: observing %d changed whether it is late", i, s.t)
				}
				if got := w.Value(); got != s.wm {
					t.Errorf("step %d: Value() = %d, want %d", i, got, s.wm)
				}
				size := int64(tt.c.Size / time.Millisecond)
				if !w.Closed(s.closedTo - size) {
					t.Errorf("step %d: window %d not closed", i, s.closedTo-size)
				}
				if w.Closed(s.closedTo) {
					t.Errorf("step %d: window %d closed", i, s.closedTo)
				}
			}
		})
	}
}

func TestWatermarkEmptyClosesNothing(t *testing.T) {
	w := NewWatermark(DefaultConfig(), math.MinInt64)
	if w.Closed(math.MinInt64) || w.Late(math.MinInt64) || w.Late(0) {
		t.Fatal("empty watermark closed a window")
	}
	w.Observe(math.MinInt64) // must not underflow
	if w.Value() != math.MinInt64 {
		t.Fatalf("Value() = %d after observing MinInt64", w.Value())
	}
}

func TestWatermarkAdvanceTo(t *testing.T) {
	w := NewWatermark(Config{Size: 10 * time.Second}, math.MinInt64)
	w.AdvanceTo(25_000)
	if w.Value() != 25_000 || !w.Closed(10_000) || w.Closed(20_000) {
		t.Fatalf("after AdvanceTo(25000): value %d", w.Value())
	}
	w.AdvanceTo(1_000)
	w.Observe(1_000)
	if w.Value() != 25_000 {
		t.Fatalf("watermark moved back to %d", w.Value())
	}
}

func BenchmarkLate(b *testing.B) {
	w := NewWatermark(DefaultConfig(), math.MinInt64)
	b.ReportAllocs()
	n := 0
	for i := 0; b.Loop(); i++ {
		t := int64(i) * 7
		if !w.Late(t) {
			n++
		}
		w.Observe(t)
	}
	_ = n
}
