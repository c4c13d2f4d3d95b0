#!/usr/bin/env bash
# The Python SDK's benchmarks (not part of make test; see benchmarks/README.md):
# record() per call, record_frame() rows/s on a 1M x 20 frame, and whylogs'
# why.log(df) on the same frame, in the same run, each RUNS times (default
# 3), medians printed last. Uses the SDK's venv (deployments/local/python.sh)
# and a venv of its own for whylogs ($VIGIL_CACHE/whylogs-venv, made once).
# With VIGIL_KAFKA set the Kafka figures are measured too.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$here/../.."
cache="${VIGIL_CACHE:-$HOME/.cache/vigil}"
runs="${RUNS:-3}"

"$repo/deployments/local/python.sh" install
py="$("$repo/deployments/local/python.sh" path)"
wl="$cache/whylogs-venv"
if ! "$wl/bin/python" -c 'import whylogs, pandas, pyarrow' 2>/dev/null; then
  echo "run.sh: creating $wl (pip install whylogs pandas pyarrow)" >&2
  "${VIGIL_PYTHON:-python3}" -m venv "$wl"
  "$wl/bin/pip" install -q --disable-pip-version-check whylogs pandas pyarrow
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$py" "$here/frame.py" "$tmp/frame.parquet" "${ROWS:-1000000}"
out="$tmp/results.jsonl"
for ((i = 1; i <= runs; i++)); do
  echo "run.sh: run $i/$runs" >&2
  "$py" "$here/bench_vigil.py" record | tee -a "$out"
  "$py" "$here/bench_vigil.py" frame "$tmp/frame.parquet" | tee -a "$out"
  "$wl/bin/python" "$here/bench_whylogs.py" "$tmp/frame.parquet" 2>/dev/null | tee -a "$out"
done
"$py" - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def med(bench, key):
    v = [r[key] for r in rows if r["bench"] == bench and key in r]
    return statistics.median(v) if v else None
fig = {
    "record() alone, 20 features, us/call": med("record_alone", "us_per_call"),
    "record() alone, 4 features, us/call": med("record_alone", "us_per_call_4_features"),
    "record() with the batcher sending to Kafka, us/call": med("record_kafka", "us_per_call"),
    "record() to Kafka, events/s (until close)": med("record_kafka", "events_per_s"),
    "record_frame() caller, rows/s": med("frame", "caller_rows_per_s"),
    "record_frame() until flushed to Kafka, rows/s": med("frame", "kafka_rows_per_s"),
    "whylogs why.log(df), rows/s": med("whylogs", "rows_per_s"),
}
print(f"\nmedians of {len([r for r in rows if r['bench'] == 'whylogs'])} runs:")
for k, v in fig.items():
    print(f"  {k:55s} {'-' if v is None else f'{v:,.2f}'}")
w = fig["whylogs why.log(df), rows/s"]
for k in ("record_frame() caller, rows/s", "record_frame() until flushed to Kafka, rows/s"):
    if w and fig[k]:
        print(f"  {k.split(',')[0] + ' vs whylogs':55s} {fig[k] / w:,.1f}x")
PY
