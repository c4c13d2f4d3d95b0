package main

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

func TestPeriodicRunsOnlyWhileLeading(t *testing.T) {
	var leading atomic.Bool
	var passes atomic.Int32
	p := periodic{leader: leading.Load}
	p.start(5*time.Millisecond, true, func(context.Context) { passes.Add(1) })
	time.Sleep(50 * time.Millisecond)
	if n := passes.Load(); n != 0 {
		t.Fatalf("%d passes while not leading", n)
	}
	leading.Store(true)
	deadline := time.Now().Add(5 * time.Second)
	for passes.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if err := p.stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	n := passes.Load()
	if n < 3 {
		t.Fatalf("%d passes while leading, want >= 3", n)
	}
	time.Sleep(20 * time.Millisecond)
	if passes.Load() != n {
		t.Error("passes after stop")
	}
	if err := p.stop(context.Background()); err != nil {
		t.Errorf("second stop: %v", err)
	}
	var never periodic
	if err := never.stop(context.Background()); err != nil {
		t.Errorf("stop without start: %v", err)
	}
}
