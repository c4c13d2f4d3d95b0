// Package window assigns events to tumbling event-time windows and tracks,
// per source partition, the watermark that decides when a window is closed.
//
// Semantics (all times are Unix milliseconds):
//
//   - A window is the half-open interval [start, start+Size). Window starts are
//     multiples of Size counted from the Unix epoch, also for negative times:
//     an event at time t belongs to the window starting at floor(t/Size)*Size.
//     An event exactly at a window's end belongs to the next window.
//   - The watermark of a partition is the largest event time observed minus
//     AllowedLateness. It never moves back.
//   - A window is closed when watermark >= its end. Once closed it stays
//     closed.
//   - An event is late when its window is closed at the time it is processed,
//     i.e. when Watermark.Late(t) is true before the event is observed. An
//     event never makes itself late: observing t raises the watermark to at
//     most t-AllowedLateness <= t < end of t's window. So checking Late before
//     or after Observe gives the same answer for the event itself.
//
// With AllowedLateness 0 a window closes as soon as an event at or after its
// end is observed; an out-of-order event whose window is still open (its
// time >= the end of the last closed window) is not late.
//
// Start, End and NewWatermark need a Config that passed Validate (they panic
// on a zero Size). Times must stay at least Size away from the int64 limits;
// Start and End saturate there rather than overflow.
//
// A Watermark is owned by one goroutine (the partition's); it is not safe for
// concurrent use. Config is a value and safe to share.
package window

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Defaults used by DefaultConfig.
const (
	DefaultSize            = time.Minute
	DefaultAllowedLateness = 30 * time.Second
)

// Config describes tumbling windows and how long late events are accepted.
type Config struct {
	Size            time.Duration // window length; default 1m
	AllowedLateness time.Duration // how far the watermark trails the newest event; default 30s
}

// DefaultConfig returns the configuration with every default applied.
func DefaultConfig() Config {
	return Config{Size: DefaultSize, AllowedLateness: DefaultAllowedLateness}
}

// ErrInvalidConfig wraps every reason Validate rejects a Config for.
var ErrInvalidConfig = errors.New("invalid window config")

// Validate reports whether c can be used: Size must be at least one second and
// a whole number of milliseconds, AllowedLateness must not be negative. It
// reports every problem, joined (errors.Join), each wrapping ErrInvalidConfig.
func (c Config) Validate() error {
	var errs []error
	switch {
	case c.Size < time.Second:
		errs = append(errs, fmt.Errorf("%w: window size %v is below 1s (set it to 1s or more, e.g. 1m)", ErrInvalidConfig, c.Size))
	case c.Size%time.Millisecond != 0:
		errs = append(errs, fmt.Errorf("%w: window size %v is not a whole number of milliseconds", ErrInvalidConfig, c.Size))
	}
	if c.AllowedLateness < 0 {
		errs = append(errs, fmt.Errorf("%w: allowed lateness %v is negative", ErrInvalidConfig, c.AllowedLateness))
	}
	return errors.Join(errs...)
}

// sizeMs returns the window size in milliseconds; c must be valid.
func (c Config) sizeMs() int64 {
	s := int64(c.Size / time.Millisecond)
	if s <= 0 {
		panic("BUG: window config used without Validate: size " + c.Size.String())
	}
	return s
}

// Start returns the start of the window containing tMs: tMs rounded down to
// a multiple of Size (towards minus infinity, also for negative times).
func (c Config) Start(tMs int64) int64 { return floorStart(tMs, c.sizeMs()) }

func floorStart(tMs, sizeMs int64) int64 {
	r := tMs % sizeMs
	if r < 0 {
		r += sizeMs
	}
	if tMs < math.MinInt64+r {
		return math.MinInt64 // the true start is not representable
	}
	return tMs - r
}

// End returns the exclusive end of the window starting at startMs.
func (c Config) End(startMs int64) int64 {
	s := c.sizeMs()
	if startMs > math.MaxInt64-s {
		return math.MaxInt64
	}
	return startMs + s
}

// Watermark tracks one partition's event-time progress: the largest event
// time observed minus AllowedLateness. It never moves back.
type Watermark struct {
	lateness int64 // ms
	sizeMs   int64
	value    int64
}

// NewWatermark returns the watermark of a partition. initialMs is the
// watermark restored from a checkpoint, or math.MinInt64 when there is none
// (then no window is closed until events are observed).
func NewWatermark(c Config, initialMs int64) *Watermark {
	return &Watermark{
		lateness: int64(c.AllowedLateness / time.Millisecond),
		sizeMs:   c.sizeMs(),
		value:    initialMs,
	}
}

// Observe advances the watermark with the event time tMs. It never moves the
// watermark back.
func (w *Watermark) Observe(tMs int64) {
	v := tMs - w.lateness
	if tMs < math.MinInt64+w.lateness {
		v = math.MinInt64
	}
	if v > w.value {
		w.value = v
	}
}

// AdvanceTo moves the watermark to ms if that is later than its value, for
// example when a partition has been idle long enough. It never moves back.
func (w *Watermark) AdvanceTo(ms int64) {
	if ms > w.value {
		w.value = ms
	}
}

// Value returns the watermark in Unix milliseconds (math.MinInt64 when
// nothing is known).
func (w *Watermark) Value() int64 { return w.value }

// Closed reports whether the window starting at windowStartMs is closed:
// the watermark has reached its end.
func (w *Watermark) Closed(windowStartMs int64) bool {
	end := windowStartMs + w.sizeMs
	if windowStartMs > math.MaxInt64-w.sizeMs {
		end = math.MaxInt64
	}
	return w.value >= end
}

// Late reports whether an event at tMs is late: its window is already closed.
func (w *Watermark) Late(tMs int64) bool {
	return w.Closed(floorStart(tMs, w.sizeMs))
}
