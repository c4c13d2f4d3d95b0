package schemas

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func TestLabelValidate(t *testing.T) {
	at := time.Unix(1700000000, 0)
	tests := []struct {
		name   string
		label  Label
		reason string // "" = valid
	}{
		{"class", ClassLabel("e-1", "fraud", "fraud", at), ""},
		{"value", ValueLabel("e-1", "price", -12.5, at), ""},
		{"zero value", ValueLabel("e-1", "price", 0, at), ""},
		{"missing event id", ClassLabel("", "fraud", "ok", at), "missing event id"},
		{"long event id", ClassLabel(strings.Repeat("x", MaxNameLen+1), "fraud", "ok", at), "event id longer"},
		{"missing model", ClassLabel("e-1", "", "ok", at), "missing model"},
		{"long model", ClassLabel("e-1", strings.Repeat("m", MaxNameLen+1), "ok", at), "model longer"},
		{"missing time", ClassLabel("e-1", "fraud", "ok", time.Time{}), "missing label time"},
		{"neither", Label{EventID: "e-1", Model: "fraud", Time: at}, "exactly one of class or value"},
		{"both", Label{EventID: "e-1", Model: "fraud", Class: "ok", HasClass: true, Value: 1, HasValue: true, Time: at},
			"exactly one of class or value"},
		{"empty class", ClassLabel("e-1", "fraud", "", at), "empty class"},
		{"long class", ClassLabel("e-1", "fraud", strings.Repeat("c", MaxNameLen+1), at), "class longer"},
		{"NaN", ValueLabel("e-1", "price", math.NaN(), at), "not finite"},
		{"infinite", ValueLabel("e-1", "price", math.Inf(-1), at), "not finite"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.label.Validate()
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidLabel) || !strings.Contains(err.Error(), tt.reason) {
				t.Fatalf("Validate() = %v, want ErrInvalidLabel with %q", err, tt.reason)
			}
		})
	}
}

func TestLabelValidateDoesNotAllocate(t *testing.T) {
	l := ClassLabel("e-1", "fraud", "fraud", time.Unix(1700000000, 0))
	if n := testing.AllocsPerRun(100, func() { _ = l.Validate() }); n != 0 {
		t.Fatalf("Validate of a valid label allocates %v times", n)
	}
}

func TestLabelPositive(t *testing.T) {
	at := time.Unix(1700000000, 0)
	tests := []struct {
		label        Label
		positive, ok bool
	}{
		{ValueLabel("e", "m", 1, at), true, true},
		{ValueLabel("e", "m", 0, at), false, true},
		{ValueLabel("e", "m", 0.5, at), false, false},
		{ValueLabel("e", "m", -1, at), false, false},
		{ClassLabel("e", "m", "1", at), true, true},
		{ClassLabel("e", "m", "true", at), true, true},
		{ClassLabel("e", "m", "0", at), false, true},
		{ClassLabel("e", "m", "false", at), false, true},
		{ClassLabel("e", "m", "True", at), false, false},
		{ClassLabel("e", "m", "fraud", at), false, false},
		{Label{EventID: "e", Model: "m", Time: at}, false, false},
	}
	for _, tt := range tests {
		positive, ok := tt.label.Positive()
		if positive != tt.positive || ok != tt.ok {
			t.Errorf("%+v.Positive() = %v, %v; want %v, %v", tt.label, positive, ok, tt.positive, tt.ok)
		}
	}
}

func TestLabelSchema(t *testing.T) {
	s := NewLabelSchema()
	want := []string{ColEventID, ColModel, ColLabelTime, ColLabelClass, ColLabelValue}
	if s.NumFields() != len(want) {
		t.Fatalf("%d fields, want %d", s.NumFields(), len(want))
	}
	for i, name := range want {
		if s.Field(i).Name != name {
			t.Errorf("field %d is %q, want %q", i, s.Field(i).Name, name)
		}
	}
	if v, ok := s.Metadata().GetValue(MetaSchemaVersion); !ok || v != "1" {
		t.Errorf("metadata %s = %q, %v", MetaSchemaVersion, v, ok)
	}
}
