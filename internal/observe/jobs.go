package observe

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Results of a job run, the values of vigil_job_runs_total's result label.
const (
	JobOK      = "ok"      // the pass ran and succeeded
	JobError   = "error"   // the pass ran and failed (it is retried at the next tick)
	JobSkipped = "skipped" // the pass did not run here: this process does not lead the group
)

// Jobs counts the runs of the periodic jobs (drift, performance, alerts) by
// result and times those that ran. Safe for concurrent use.
type Jobs struct {
	runs    *prometheus.CounterVec
	seconds *prometheus.HistogramVec
}

// jobBuckets are the buckets, in seconds, of a job pass: from a pass with
// nothing to do to a large backfill.
var jobBuckets = []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}

// NewJobs registers the job metrics on reg, with every result of each of
// jobs at 0 so that rates and alerts see the series before the first run.
func NewJobs(reg prometheus.Registerer, jobs ...string) (*Jobs, error) {
	j := &Jobs{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_job_runs_total",
			Help: "Passes of the periodic jobs by result: ok, error (retried at the next tick), skipped (this process does not lead the group).",
		}, []string{"job", "result"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vigil_job_duration_seconds",
			Help:    "Duration of the job passes that ran (ok or error).",
			Buckets: jobBuckets,
		}, []string{"job"}),
	}
	for _, c := range []prometheus.Collector{j.runs, j.seconds} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, job := range jobs {
		for _, r := range []string{JobOK, JobError, JobSkipped} {
			j.runs.WithLabelValues(job, r)
		}
		j.seconds.WithLabelValues(job)
	}
	return j, nil
}

// Observe records one pass of job with result; took is its duration, not
// recorded for a skipped pass.
func (j *Jobs) Observe(job, result string, took time.Duration) {
	j.runs.WithLabelValues(job, result).Inc()
	if result != JobSkipped {
		j.seconds.WithLabelValues(job).Observe(took.Seconds())
	}
}
