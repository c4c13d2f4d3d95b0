// Package alerting turns Vigil's windowed statistics into alert
// notifications: it loads alert rules from a YAML file and evaluates them,
// one alert series at a time, through a pending/firing/resolved state
// machine whose state the caller persists. The Evaluator does no I/O and
// starts no goroutines. The Runner drives it through ports it declares and
// imports no sink: it reads the statistics and keeps the series states
// (Store, the ClickHouse sink's alert store), reads the reference profiles
// (ReferenceSource, its reference store), feeds the statistics in as
// Observations, hands the returned Notifications, which carry this
// package's own Alert, to a Dispatcher (sinks/webhook, whose receivers
// render an Alert as it is) after asking the Outbox what it holds already,
// then stores the states: outbox first, then states, so that a crash in
// between re-sends nothing.
//
// # Rules file
//
// The file (see testdata/rules.yaml) is decoded strictly: an unknown key is
// an error that names its line. Load decodes it; Validate checks it against
// a metric Catalog, reports every problem at once (one per line, each naming
// the line, the rule or receiver and the field) and compiles the rules;
// sinks/webhook.FromConfig builds the receivers, resolving their secrets.
//
//	receivers:
//	  - name: oncall
//	    type: webhook                    # webhook | alertmanager | slack | pagerduty
//	    url: env:VIGIL_ONCALL_URL        # a secret.Secret: literal, env:VAR or file:/path
//	    secret: file:/run/secrets/hmac   # webhook only: the HMAC key
//	rules:
//	  - name: AmountDrift                # unique, [A-Za-z_][A-Za-z0-9_]*
//	    metric: psi                      # a metric of the catalog
//	    models: ["fraud*"]               # path.Match globs; default ["*"]
//	    features: ["amount"]             # feature-level metrics only; default ["*"]
//	    segments: [""]                   # "" is the whole traffic; default [""]
//	    condition: {above: 0.2}          # or below, outside: [lo, hi],
//	                                     # change: {against: previous|reference, above: x, relative: bool}
//	    for: 3                           # consecutive windows; default 1
//	    delay: 1h                        # wait after the window's end; default 0
//	    severity: critical               # critical | warning | info; default warning
//	    labels: {team: risk}
//	    annotations: {summary: "{{.Model}}: {{.Metric}} is {{.Value}}"}
//	    receivers: [oncall]              # default defaults.receivers
//	  - name: FraudSilent
//	    metric: event_count
//	    models: ["fraud*"]
//	    no_data: 10m                     # no condition: fires after 10m without events
//	defaults:
//	  receivers: [oncall]
//
// Globs follow path.Match, so "*" does not match "/". A segment is
// "key=value" ("region=eu"); the empty segment is the whole traffic, so the
// default [""] leaves segment series alone, "region=*" takes every region and
// "*" takes everything. Annotations are text/template texts over
// TemplateData; they are parsed and tried on sample data by Validate, so a
// misspelt field or a label the rule's alerts lack fails there, not at 3 a.m.
// (.Labels.segment exists only when no segment pattern is ""; use
// {{index .Labels "segment"}} or {{.Segment}}). Templates are trusted input,
// but {{define}}, {{template}} and ranges over more than 10000 integers are
// refused, and a rendered annotation is capped at 16 KiB. A rule without a
// summary gets DefaultSummary (NoDataSummary for no_data rules). If a
// template still fails when an alert is built, the annotation carries the
// error instead of the text and the alert is sent.
//
// # State machine
//
// A series is one rule on one (model, feature, segment); its fingerprint is
// stable across runs and shared by its firing and resolved notifications.
// Each evaluated window of a series, in WindowStart order:
//
//   - condition holds: Consecutive++. The series is pending while
//     Consecutive < for and fires when it reaches for; the transition to
//     firing notifies once. StartsAt is the end of the episode's first
//     holding window.
//   - condition does not hold: Consecutive = 0; a firing series notifies
//     resolved (EndsAt = the window's end) and becomes inactive; a pending
//     one becomes inactive silently.
//   - value NaN: the window is skipped, it neither holds nor clears, and it
//     does not advance LastWindow (a later non-NaN value of that window is
//     still evaluated).
//   - change against previous compares with the previous evaluated window of
//     the series; change against reference with Observation.Reference. An
//     unknown base (the first window; a NaN Reference) evaluates nothing but
//     still records the value as the next window's base.
//
// Threshold, in notifications and TemplateData, is the bound the value
// crossed, in the metric's units: above, below, the crossed end of outside,
// and base ± above (times |base| when relative) for change.
//
// no_data rules are evaluated by NoData, not Observe: a model fires when its
// newest window with events ended more than no_data ago and resolves once a
// newer window is recent again. StartsAt is lastSeen + no_data, EndsAt the
// new lastSeen, Value the silence in seconds.
//
// # What the caller does
//
//  1. Restore: NewEvaluator(cfg, restored, clock) with the states last
//     persisted. A window at or before a series' LastWindow is ignored, so
//     re-reading windows after a restart neither re-fires nor resolves.
//     Restored states of rules that are no longer in the config (or whose
//     metric or globs no longer cover the series) are dropped; an alert they
//     had firing is never resolved by Vigil.
//  2. Each cycle, read the windows that ended in the last MaxDelay() plus a
//     few windows, call Observe (and NoData with the newest window end with
//     events of every model to check). Windows may come in any order and
//     more than once. Observe ignores a window whose WindowEnd + the rule's
//     delay is after now without recording it, so pass it again in a later
//     cycle. A window older than the newest evaluated one of its series is
//     ignored for good: pass windows once they are final.
//  3. Record the returned notifications durably, deduplicated by
//     Notification.ID, and enqueue them to the webhook.Dispatcher.
//  4. Then persist Changed() (one row per series, keyed by Fingerprint,
//     newest UpdatedAt wins).
//
// Steps 3 before 4: after a crash between them, the next run re-evaluates
// the same windows from the older states and produces the same
// notifications with the same IDs, which step 3 drops as duplicates. The
// other order would lose notifications.
//
// Every series ever evaluated stays in memory and in States, and comes back
// with the restored states; the caller may delete rows of removed rules and
// of models it no longer serves.
//
// # Concurrency
//
// A Config is read-only once Validate returned nil; Validate itself must not
// run concurrently with other uses of the Config. An Evaluator is safe for
// concurrent use; its methods are serialised by a mutex. Returned slices and
// maps belong to the caller.
package alerting
