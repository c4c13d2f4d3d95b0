package schemas

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func validEvent() Event {
	return Event{
		ID: "e-1", Model: "fraud", ModelVersion: "3", Time: time.Unix(1700000000, 0),
		Features:   []Feature{Num("amount", 12.5), Str("country", "DE"), Flag("is_new", true), Missing("age")},
		Prediction: Score(0.93),
		Latency:    4 * time.Millisecond,
		Segments:   []Tag{{Key: "region", Value: "eu"}},
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Event)
		reason string // "" = valid
	}{
		{"valid", func(*Event) {}, ""},
		{"class prediction", func(e *Event) {
			e.Prediction = Class("fraud", ClassProbability{"fraud", 0.9}, ClassProbability{"ok", 0.1})
		}, ""},
		{"regression", func(e *Event) { e.Prediction = Regression(-3.5) }, ""},
		{"NaN feature is data, not a contract error", func(e *Event) { e.Features[0] = Num("amount", math.NaN()) }, ""},
		{"no features", func(e *Event) { e.Features = nil }, ""},
		{"missing id", func(e *Event) { e.ID = "" }, "missing event id"},
		{"long id", func(e *Event) { e.ID = strings.Repeat("x", MaxNameLen+1) }, "event id longer"},
		{"missing model", func(e *Event) { e.Model = "" }, "missing model"},
		{"long version", func(e *Event) { e.ModelVersion = strings.Repeat("v", MaxNameLen+1) }, "longer than"},
		{"missing time", func(e *Event) { e.Time = time.Time{} }, "missing event time"},
		{"negative latency", func(e *Event) { e.Latency = -time.Millisecond }, "negative latency"},
		{"no prediction", func(e *Event) { e.Prediction = Prediction{} }, "missing prediction"},
		{"infinite score", func(e *Event) { e.Prediction = Score(math.Inf(1)) }, "score is not finite"},
		{"NaN value", func(e *Event) { e.Prediction = Regression(math.NaN()) }, "value is not finite"},
		{"probability above 1", func(e *Event) { e.Prediction = Class("a", ClassProbability{"a", 1.5}) }, "not in [0,1]"},
		{"probability without class", func(e *Event) { e.Prediction = Class("a", ClassProbability{"", 0.5}) }, "bad class name"},
		{"unnamed feature", func(e *Event) { e.Features[1].Name = "" }, "feature 1: bad name"},
		{"unknown kind", func(e *Event) { e.Features[0].Value.Kind = 9 }, "unknown kind"},
		{"empty segment key", func(e *Event) { e.Segments[0].Key = "" }, "segment 0: bad key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := validEvent()
			tt.mutate(&e)
			err := e.Validate()
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidEvent) || !strings.Contains(err.Error(), tt.reason) {
				t.Fatalf("Validate() = %v, want ErrInvalidEvent with %q", err, tt.reason)
			}
		})
	}
}

func TestValidateDoesNotAllocate(t *testing.T) {
	e := validEvent()
	if n := testing.AllocsPerRun(100, func() { _ = e.Validate() }); n != 0 {
		t.Fatalf("Validate of a valid event allocates %v times", n)
	}
}
