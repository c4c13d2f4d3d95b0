#!/usr/bin/env bash
# Install chDB (embedded ClickHouse for Python) from PyPI, pinned, and check it.
#
#   chdb.sh [install]   pip install chdb==$CHDB_VERSION if missing or different; print engine version
#   chdb.sh version     print the embedded ClickHouse version (exit 1 if chdb is missing)
#
# chdb 4.4.0 depends on chdb-core 26.9.0 (the native engine, ClickHouse
# 26.9.2.1), pandas and pyarrow; about 20 s to install from wheels.
# Environment: VIGIL_PYTHON (python3) picks the interpreter; chdb_exec.py must
# then be run with the same one.
set -euo pipefail

SCRIPT_NAME="chdb.sh"
# shellcheck source=deployments/local/_common.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/_common.sh"

CHDB_VERSION="4.4.0"
PY="${VIGIL_PYTHON:-python3}"

engine_version() {
  "$PY" - <<'PY' 2>/dev/null
import chdb
print(chdb.__version__, str(chdb.query("SELECT version()", "TSV")).strip())
PY
}

install() {
  command -v "$PY" >/dev/null || die "$PY not found"
  local have=""
  have="$(engine_version)" || have=""
  if [[ "${have%% *}" == "$CHDB_VERSION" ]]; then
    log "chdb ${have%% *} is installed (ClickHouse engine ${have#* })"
    return 0
  fi
  log "pip install chdb==$CHDB_VERSION${have:+ (found ${have%% *})} for $("$PY" -c 'import sys; print(sys.executable)')"
  local tmp
  tmp="$(mktemp)"
  if ! PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1 \
      "$PY" -m pip install -q --no-input "chdb==$CHDB_VERSION" </dev/null >"$tmp" 2>&1; then
    tail -n 30 "$tmp" >&2
    rm -f "$tmp"
    die "pip install chdb==$CHDB_VERSION failed"
  fi
  rm -f "$tmp"
  have="$(engine_version)" || die "chdb installed but 'import chdb' / SELECT version() fails"
  log "chdb ${have%% *} installed (ClickHouse engine ${have#* })"
}

case "${1:-install}" in
  install) install ;;
  version)
    v="$(engine_version)" || die "chdb is not importable by $PY; run: $0 install"
    printf '%s\n' "${v#* }"
    ;;
  *)
    echo "usage: $0 [install|version]" >&2
    exit 2
    ;;
esac
