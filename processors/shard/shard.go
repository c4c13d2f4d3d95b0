package shard

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/segmentio/kafka-go"
)

// Partition is the partition, of a topic with partitions partitions, whose
// consumer owns model: kafka-go's Hash balancer (FNV-1a, as Sarama), which
// the Go SDK uses to key a model's events, so the owner of a model's jobs
// is also the member that holds its window states when its events come
// from the Go SDK (other producers may partition otherwise: the split stays
// exact, only that locality is lost). partitions < 1 counts as 1.
func Partition(model string, partitions int) int {
	if partitions <= 1 {
		return 0
	}
	ids := make([]int, partitions)
	for i := range ids {
		ids[i] = i
	}
	return (&kafka.Hash{}).Balance(kafka.Message{Key: []byte(model)}, ids...)
}

// Assignment is this member's part of one generation of the group: the
// partitions of the prediction topic it consumes, of how many.
type Assignment struct {
	Generation int32
	Member     string // the member id the group coordinator gave
	Partitions []int  // sorted
	Total      int    // partitions of the topic
}

// Owns reports whether the member of a owns model.
func (a Assignment) Owns(model string) bool {
	_, ok := slices.BinarySearch(a.Partitions, Partition(model, a.Total))
	return ok
}

// Owner says what this member owns now.
type Owner interface {
	// Assignment is this member's part of the current generation, and
	// whether it is in one with a known partition count (false between
	// generations: it owns nothing then).
	Assignment() (Assignment, bool)
}

// Everything owns every model: one process alone (partition 0 of 1,
// generation 0).
var Everything Owner = everything{}

type everything struct{}

func (everything) Assignment() (Assignment, bool) {
	return Assignment{Member: "all", Partitions: []int{0}, Total: 1}, true
}

// Owners maps each of models to the member that owns it in a generation
// whose assignment is members (member -> partitions) of a topic with total
// partitions; a model whose partition no member consumes maps to "". For
// tests and tools: a member knows only its own assignment.
func Owners(members map[string][]int, total int, models []string) map[string]string {
	byPart := map[int]string{}
	for m, parts := range members {
		for _, p := range parts {
			byPart[p] = m
		}
	}
	out := make(map[string]string, len(models))
	for _, model := range models {
		out[model] = byPart[Partition(model, total)]
	}
	return out
}

// Pass is one computation recorded in the Ledger: of one window (Model
// set), or the end of a pass over a partition's models (Model "", Input 0,
// WindowStart zero).
type Pass struct {
	Job         string
	Partition   int // the owning partition
	Model       string
	Version     string // "" when the job computes a window of all versions (performance)
	WindowStart time.Time
	Input       uint64 // fingerprint of what the computation read
	Generation  int64
	Member      string
	ComputedAt  time.Time
	// Seq orders the passes: the recording time in Unix nanoseconds
	// (ComputedAt may have seconds only).
	Seq uint64
}

// Ledger stores the passes (vigil_job_passes; the ClickHouse sink's window
// store implements it).
type Ledger interface {
	// Passes returns the window passes of job (of model; "": every model)
	// whose windows start at or after from.
	Passes(ctx context.Context, job, model string, from time.Time) ([]Pass, error)
	// PartitionPasses returns, per partition, when the newest pass of job
	// over its models began.
	PartitionPasses(ctx context.Context, job string) (map[int]time.Time, error)
	// RecordPasses stores passes.
	RecordPasses(ctx context.Context, passes []Pass) error
}

// Outcomes of a window, the values of vigil_job_windows_total's outcome label.
const (
	Computed   = "computed"   // computed from an input no pass had recorded
	Unchanged  = "unchanged"  // not computed: its input is the one of its newest recorded pass
	Recomputed = "recomputed" // computed again from the input another pass had computed too: wasted
)

// Counters count windows by job and outcome; safe for concurrent use.
type Counters struct {
	vec *prometheus.CounterVec
}

// NewCounters returns counters with every outcome of each of jobs at 0.
func NewCounters(jobs ...string) *Counters {
	c := &Counters{vec: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vigil_job_windows_total",
		Help: "Windows the drift, multivariate and performance jobs of this member handled, by outcome: computed (new input), unchanged (not computed again), recomputed (an input another pass computed too: wasted work, e.g. two members in a handover).",
	}, []string{"job", "outcome"})}
	for _, j := range jobs {
		for _, o := range []string{Computed, Unchanged, Recomputed} {
			c.vec.WithLabelValues(j, o)
		}
	}
	return c
}

// Collector is the counters' collector, to register.
func (c *Counters) Collector() prometheus.Collector { return c.vec }

// Value is the count of job's windows with outcome.
func (c *Counters) Value(job, outcome string) float64 {
	var m dto.Metric
	if err := c.vec.WithLabelValues(job, outcome).Write(&m); err != nil {
		panic("BUG: write a counter: " + err.Error())
	}
	return m.GetCounter().GetValue()
}

func (c *Counters) add(job, outcome string, n int) {
	if c != nil && n > 0 {
		c.vec.WithLabelValues(job, outcome).Add(float64(n))
	}
}

// Shard is one job's share of the group's models: who owns what, where
// passes are recorded, what is counted. A nil *Shard owns everything and
// records nothing (a job run alone, the CLI's one-shot commands).
type Shard struct {
	job      string
	owner    Owner
	ledger   Ledger
	counters *Counters
}

// New returns job's shard: owner says what this member owns, passes go to
// ledger, outcomes to counters (nil: not counted).
func New(job string, owner Owner, ledger Ledger, counters *Counters) *Shard {
	return &Shard{job: job, owner: owner, ledger: ledger, counters: counters}
}

// ErrNotMember is Begin's answer between generations: this member owns
// nothing now; the pass is skipped.
var ErrNotMember = errors.New("not in a generation of the group: owns no model now")

type windowKey struct {
	model, version string
	start          int64
}

// Round is one pass of a job: Begin, then Owns and Changed for each window,
// Done for each one computed and stored, Flush after each model, then
// Commit. A nil *Round (from a
// nil *Shard) owns and computes everything.
type Round struct {
	s      *Shard
	a      Assignment
	from   time.Time
	newest map[windowKey]Pass
	done   []Pass
}

// Begin starts a round over the windows that start at or after from: it
// reads the ledger once. It returns ErrNotMember when this member is in no
// generation.
func (s *Shard) Begin(ctx context.Context, from time.Time) (*Round, error) {
	if s == nil {
		return nil, nil
	}
	a, ok := s.owner.Assignment()
	if !ok {
		return nil, ErrNotMember
	}
	r := &Round{s: s, a: a, from: from, newest: map[windowKey]Pass{}}
	passes, err := s.ledger.Passes(ctx, s.job, "", from)
	if err != nil {
		return nil, fmt.Errorf("read %s passes: %w", s.job, err)
	}
	for _, p := range passes {
		k := windowKey{p.Model, p.Version, p.WindowStart.UnixMilli()}
		if q, ok := r.newest[k]; !ok || later(p, q) {
			r.newest[k] = p
		}
	}
	return r, nil
}

// later orders passes by Seq, then member (a tie of two clocks).
func later(p, q Pass) bool {
	if p.Seq != q.Seq {
		return p.Seq > q.Seq
	}
	return p.Member > q.Member
}

// Generation is the generation of the round (0 for a nil round).
func (r *Round) Generation() int32 {
	if r == nil {
		return 0
	}
	return r.a.Generation
}

// Owns reports whether this member owns model in the round's generation,
// and is still in that generation: a pass that outlives its generation (a
// rebalance while it runs) stops computing at its next window rather than
// race the next owner.
func (r *Round) Owns(model string) bool {
	if r == nil {
		return true
	}
	if !r.a.Owns(model) {
		return false
	}
	now, ok := r.s.owner.Assignment()
	return ok && now.Generation == r.a.Generation && now.Member == r.a.Member
}

// Changed reports whether the window's input differs from the one of its
// newest recorded pass (true when none): whether to compute it. An
// unchanged window is counted.
func (r *Round) Changed(model, version string, start time.Time, input uint64) bool {
	if r == nil {
		return true
	}
	p, ok := r.newest[windowKey{model, version, start.UnixMilli()}]
	if ok && p.Input == input {
		r.s.counters.add(r.s.job, Unchanged, 1)
		return false
	}
	return true
}

// Done records that the window was computed from input and its result stored.
func (r *Round) Done(model, version string, start time.Time, input uint64) {
	if r == nil {
		return
	}
	r.done = append(r.done, Pass{Job: r.s.job, Partition: Partition(model, r.a.Total), Model: model, Version: version,
		WindowStart: start.UTC(), Input: input, Generation: int64(r.a.Generation), Member: r.a.Member})
}

// Resume is when the newest pass over every partition this member owns
// began (the oldest of those), the zero time when one of them has none:
// where a job that looks for changes since its previous pass resumes after
// the ownership moved.
func (r *Round) Resume(ctx context.Context) (time.Time, error) {
	if r == nil {
		return time.Time{}, nil
	}
	last, err := r.s.ledger.PartitionPasses(ctx, r.s.job)
	if err != nil {
		return time.Time{}, fmt.Errorf("read %s partition passes: %w", r.s.job, err)
	}
	var oldest time.Time
	for _, p := range r.a.Partitions {
		t, ok := last[p]
		if !ok {
			return time.Time{}, nil
		}
		if oldest.IsZero() || t.Before(oldest) {
			oldest = t
		}
	}
	return oldest, nil
}

// Idle reports whether this member owns no partition in the round's
// generation (a standby member): it has nothing to do.
func (r *Round) Idle() bool { return r != nil && len(r.a.Partitions) == 0 }

// Flush records the windows Done since the last Flush, then reads the
// ledger back and counts each window computed or, when another pass
// computed the same input and recorded it first, recomputed. The jobs
// flush after each model's results are stored, so that the next owner,
// after a rebalance in the middle of a pass, finds what was computed.
func (r *Round) Flush(ctx context.Context) error {
	if r == nil || len(r.done) == 0 {
		return nil
	}
	now := time.Now().UTC()
	model := r.done[0].Model
	for i := range r.done {
		r.done[i].ComputedAt, r.done[i].Seq = now, uint64(now.UnixNano())
		if r.done[i].Model != model {
			model = ""
		}
	}
	if err := r.s.ledger.RecordPasses(ctx, r.done); err != nil {
		return fmt.Errorf("record %s passes: %w", r.s.job, err)
	}
	back, err := r.s.ledger.Passes(ctx, r.s.job, model, r.from)
	if err != nil {
		return fmt.Errorf("read %s passes back: %w", r.s.job, err)
	}
	type inputKey struct {
		windowKey
		input uint64
	}
	first := map[inputKey]Pass{}
	for _, p := range back {
		k := inputKey{windowKey{p.Model, p.Version, p.WindowStart.UnixMilli()}, p.Input}
		if q, ok := first[k]; !ok || later(q, p) {
			first[k] = p
		}
	}
	again := 0
	for _, p := range r.done {
		q, ok := first[inputKey{windowKey{p.Model, p.Version, p.WindowStart.UnixMilli()}, p.Input}]
		if ok && (q.Member != p.Member || q.Generation != p.Generation) {
			again++
		}
	}
	r.s.counters.add(r.s.job, Recomputed, again)
	r.s.counters.add(r.s.job, Computed, len(r.done)-again)
	r.done = r.done[:0]
	return nil
}

// Commit flushes the round, and with began non-zero records the end of a
// pass that began then over each partition this member owns (for Resume).
func (r *Round) Commit(ctx context.Context, began time.Time) error {
	if r == nil {
		return nil
	}
	if err := r.Flush(ctx); err != nil {
		return err
	}
	if began.IsZero() || len(r.a.Partitions) == 0 {
		return nil
	}
	rows := make([]Pass, 0, len(r.a.Partitions))
	for _, p := range r.a.Partitions {
		rows = append(rows, Pass{Job: r.s.job, Partition: p, Generation: int64(r.a.Generation), Member: r.a.Member,
			ComputedAt: began.UTC(), Seq: uint64(time.Now().UnixNano())})
	}
	if err := r.s.ledger.RecordPasses(ctx, rows); err != nil {
		return fmt.Errorf("record %s partition passes: %w", r.s.job, err)
	}
	return nil
}

// Windows is one model version's work in a round: the states of the windows
// whose input changed since their newest recorded pass, and those inputs,
// to mark Done once the results are stored.
type Windows[S any] struct {
	Model, Version string
	States         []S
	inputs         map[int64]uint64
}

// ChangedWindows groups a model version's states by their window start
// (start, Unix milliseconds) and keeps the states of every window whose
// input (input of all the window's states) Changed reports as changed.
func ChangedWindows[S any](r *Round, model, version string, states []S, start func(S) int64, input func([]S) uint64) Windows[S] {
	byWindow := map[int64][]S{}
	for _, st := range states {
		byWindow[start(st)] = append(byWindow[start(st)], st)
	}
	w := Windows[S]{Model: model, Version: version, inputs: map[int64]uint64{}}
	for ws, sts := range byWindow {
		in := input(sts)
		if r.Changed(model, version, time.UnixMilli(ws), in) {
			w.States = append(w.States, sts...)
			w.inputs[ws] = in
		}
	}
	return w
}

// Done records every window of w as computed (Round.Done).
func (w Windows[S]) Done(r *Round) {
	for ws, in := range w.inputs {
		r.Done(w.Model, w.Version, time.UnixMilli(ws), in)
	}
}
