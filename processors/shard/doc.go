// Package shard splits the periodic jobs (drift, performance, multivariate
// drift) over the members of the processing consumer group, and keeps the
// ledger that makes a handover neither skip nor double a window.
//
// # Ownership
//
// The unit of work is the model. In a generation of the group, model m is
// owned by the member that consumes partition Partition(m, P) of the
// prediction topic (P partitions): the partition kafka-go's Hash balancer,
// the Go SDK's, sends m's events to. Every member knows its own assignment
// (kafka-go gives a member nothing else) and the Kafka group coordinator
// gives each partition to exactly one member per generation, so every model
// has exactly one owner per generation without a membership list, and the
// split moves with the partitions when the group rebalances. An Owner is
// this member's answer for the current generation (pipeline.Processor.Owns).
//
// # Ledger
//
// Each job records in the Ledger (vigil_job_passes) one Pass per window it
// computed: the job, model, version, window start, a fingerprint of what
// the computation read (Input), the generation and the member. A Round is
// one pass of a job: it reads the ledger once, tells the job which windows
// changed since their last recorded computation (by any member, in any
// generation), so that an unchanged window is not computed again, records
// what the job computed, and reads the ledger back to find a window whose
// same input another member computed too (the handover's overlap, when an
// expelled member does not know yet): that computation is counted as
// recomputed, by the later of the two. The performance job also records
// the end of each pass per owned partition, and the next owner of a
// partition resumes from there (Round.Resume).
//
// Counters (vigil_job_windows_total{job,outcome}) say how many windows were
// computed, found unchanged, or computed again; they are safe for
// concurrent use. A Round is used by one goroutine.
package shard
