#!/usr/bin/env bash
# Runs the peer comparison of issue 14 in one go and prints the ratios:
# Evidently (0.7.x) DataDriftPreset against Vigil's reference build + window
# ingest + drift evaluation on the same ROWS x FEATURES data, and whylogs
# (1.6.x) why.log against Vigil's window update on WL_ROWS x WL_FEATURES.
# Installs the peers from PyPI into a virtualenv under the cache directory.
# Takes minutes (Evidently alone took 113 s at 356k x 100). Not part of make test.
#
#   benchmarks/peers/run.sh                      # 356k x 100 and 1M x 20
#   ROWS=50000 WL_ROWS=100000 benchmarks/peers/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
ROWS=${ROWS:-356000} FEATURES=${FEATURES:-100} WL_ROWS=${WL_ROWS:-1000000} WL_FEATURES=${WL_FEATURES:-20}
venv=${VIGIL_PEERS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/vigil/peers-venv}
if [ ! -x "$venv/bin/python" ]; then
	python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q "evidently>=0.7,<0.8" "whylogs>=1.6,<1.7" "pandas<3" pyarrow numpy
data=$(mktemp -d)
trap 'rm -rf "$data"' EXIT
"$venv/bin/python" benchmarks/peers/gen.py "$data" "$ROWS" "$FEATURES" "$WL_ROWS" "$WL_FEATURES"
go build -o "$data/vigil-peers" ./benchmarks/peers/vigil
vigil=$("$data/vigil-peers" -dir "$data")
peers=$("$venv/bin/python" benchmarks/peers/peers.py "$data")
echo "vigil: $vigil"
echo "peers: $peers"
"$venv/bin/python" - "$vigil" "$peers" "$ROWS" "$FEATURES" "$WL_ROWS" "$WL_FEATURES" <<'PY'
import json, sys
v, p = json.loads(sys.argv[1]), json.loads(sys.argv[2])
rows, feats, wl_rows, wl_feats = sys.argv[3:7]
vd = v["reference_build_s"] + v["window_ingest_s"] + v["evaluate_s"]
print(f"drift, {rows} x {feats}: Evidently {p['evidently_version']} DataDriftPreset {p['evidently_s']:.2f} s "
      f"(drifted {p['evidently_drifted']}); Vigil {vd:.2f} s = reference build {v['reference_build_s']:.2f} "
      f"+ window ingest {v['window_ingest_s']:.2f} + evaluate {v['evaluate_s']:.3f} (drifted {v['drifted']} of {v['features']}): "
      f"{p['evidently_s'] / vd:.1f}x")
print(f"(Vigil's Parquet reading, not in the times above: ref {v['read_ref_s']:.2f} s, cur {v['read_cur_s']:.2f} s, "
      f"wl {v['read_wl_s']:.2f} s)")
w = v["whylogs_case_window_update_s"]
print(f"profile, {wl_rows} x {wl_feats}: whylogs {p['whylogs_version']} why.log {p['whylogs_s']:.2f} s; "
      f"Vigil window update {w:.2f} s: {p['whylogs_s'] / w:.1f}x")
PY
