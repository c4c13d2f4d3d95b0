package pipeline

import (
	"context"
	"sync"
	"testing"

	"github.com/rs/zerolog"
)

// fakeGeneration runs the functions given to Start until end, and waits
// for them like kafka-go's Generation does before the next one.
type fakeGeneration struct {
	ctx context.Context
	end context.CancelFunc
	wg  sync.WaitGroup
}

func newFakeGeneration() *fakeGeneration {
	ctx, cancel := context.WithCancel(context.Background())
	return &fakeGeneration{ctx: ctx, end: cancel}
}

func (g *fakeGeneration) Start(fn func(ctx context.Context)) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		fn(g.ctx)
	}()
}

func (g *fakeGeneration) close() {
	g.end()
	g.wg.Wait()
}

// Leader is true for the generation in which this member has partition 0
// and false once that generation ended, before the next one is assigned.
func TestLeaderClearedWhenTheGenerationEnds(t *testing.T) {
	p, err := New(Config{Brokers: []string{"127.0.0.1:1"}, Topic: "t", Group: "g"}, nil, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if p.Leader() {
		t.Fatal("Leader before any generation")
	}
	steps := []struct {
		id         int32
		leader     bool
		partitions int
	}{{7, true, 3}, {8, false, 1}, {9, true, 4}, {10, true, 2}}
	for _, st := range steps {
		gen := newFakeGeneration()
		p.lead(gen, st.id, st.leader, st.partitions)
		if g, ok := p.Leadership(); p.Leader() != st.leader || ok != st.leader || (ok && g != st.id) || p.Partitions() != st.partitions {
			t.Errorf("generation %d: Leader %v, Leadership (%d, %v), Partitions %d; want %v and %d partitions",
				st.id, p.Leader(), g, ok, p.Partitions(), st.leader, st.partitions)
		}
		gen.close()
		if g, ok := p.Leadership(); p.Leader() || ok || p.Partitions() != 0 {
			t.Errorf("after generation %d ended: Leader %v, Leadership (%d, %v), Partitions %d; want not leading, 0 partitions",
				st.id, p.Leader(), g, ok, p.Partitions())
		}
	}
	if err := p.Shutdown(context.Background()); err != nil || p.Leader() {
		t.Errorf("Shutdown = %v, Leader %v", err, p.Leader())
	}
}
