// Package report turns what Vigil stored for one model into pictures: the
// data of every chart of a model's report (Build), one self-contained HTML
// file of them (Render: styles, scripts, data and the charts, drawn as SVG
// here, all inline; nothing is fetched when the file is opened), and the
// same views served live and read-only at /ui/ (Handler: model list, model
// page, feature page, with the range in the query string).
//
// # Interface
//
// Build reads through the ports Stores declares (ports.go), which the
// ClickHouse sink's stores implement, and computes with the code the query
// commands use: drift.MergeBuckets and drift.EvaluateBuckets (`vigil query
// drift`), performance.MergeWindows (`vigil query performance`). The
// numbers a report embeds (the JSON in its <script id="vigil-data">, see
// Report) are therefore those the query commands print for the same model
// version, range and bucket size, to the six significant digits both
// print (Num).
//
// # Blocking and concurrency
//
// Build blocks on the store reads (a handful of queries, run side by side;
// the window states of the range are read once, in one ordered scan per
// ScanSpan, and decoded, merged and evaluated by Workers goroutines as the
// scan goes on) and honours ctx; every goroutine it starts has ended when
// it returns. It keeps no state: Build,
// Render and the Handler are safe for concurrent use; each request of the
// Handler builds its page from the stores anew. Render writes to its
// io.Writer only.
//
// # What it promises
//
// A report file opens offline from disk in any current browser: no
// external script, style, font or image, no request at view time. Its size
// is bounded by the bucket count (Query.Every; by default chosen so that a
// range has at most MaxBuckets buckets) times the features: about 1 MB for
// 7 days of a 50-feature model in hourly buckets.
package report
