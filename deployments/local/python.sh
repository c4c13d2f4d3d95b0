#!/usr/bin/env bash
# The Python SDK's virtualenv (sdk/python), for its tests and the
# cross-language vectors.
#
#   python.sh [install]  create $VIGIL_CACHE/python-venv if missing and
#                        pip install -e ./sdk/python[test] (pytest, pandas,
#                        pyarrow, confluent-kafka, scikit-learn, fastapi);
#                        idempotent: skipped when sdk/python/pyproject.toml
#                        has not changed since the last install
#   python.sh path       print the venv's python
#   python.sh test [ARGS...]
#                        run pytest on sdk/python/tests (VIGIL_KAFKA etc. as exported)
#
# Environment: VIGIL_PYTHON (python3) is the interpreter the venv is made
# from (>= 3.9); VIGIL_CACHE ($HOME/.cache/vigil).
set -euo pipefail

SCRIPT_NAME="python.sh"
# shellcheck source=deployments/local/_common.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/_common.sh"

REPO="$(cd "$VIGIL_LOCAL_DIR/../.." && pwd)"
SDK="$REPO/sdk/python"
VENV="$VIGIL_CACHE/python-venv"
PY="$VENV/bin/python"
BASE="${VIGIL_PYTHON:-python3}"

install() {
  command -v "$BASE" >/dev/null || die "$BASE not found (install Python >= 3.9)"
  local stamp="$VENV/.vigil-installed" want
  want="$(cat "$SDK/pyproject.toml" | sha256sum | cut -d' ' -f1) $SDK"
  if [[ -x "$PY" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]] && "$PY" -c 'import vigil, pytest, confluent_kafka, pyarrow, pandas, sklearn' 2>/dev/null; then
    log "venv $VENV is up to date"
    return 0
  fi
  if [[ ! -x "$PY" ]]; then
    log "creating venv $VENV from $("$BASE" -c 'import sys; print(sys.executable, sys.version.split()[0])')"
    mkdir -p "$VIGIL_CACHE"
    if ! "$BASE" -m venv "$VENV" 2>/dev/null; then
      # Debian's python3 lacks ensurepip without python3-venv.
      if command -v apt-get >/dev/null && [[ "$(id -u)" == 0 ]]; then
        log "apt-get install python3-venv"
        apt-get update -qq >/dev/null && apt-get install -y -qq python3-venv >/dev/null
        rm -rf "$VENV"
        "$BASE" -m venv "$VENV"
      else
        die "$BASE -m venv failed (on Debian: apt-get install python3-venv)"
      fi
    fi
  fi
  log "pip install -e $SDK[test]"
  local tmp
  tmp="$(mktemp)"
  if ! PIP_DISABLE_PIP_VERSION_CHECK=1 "$PY" -m pip install -q --no-input -e "$SDK[test]" </dev/null >"$tmp" 2>&1; then
    tail -n 30 "$tmp" >&2
    rm -f "$tmp"
    die "pip install -e $SDK[test] failed"
  fi
  rm -f "$tmp"
  "$PY" -c 'import vigil, pytest, confluent_kafka, pyarrow, pandas, sklearn' || die "installed, but the imports fail"
  printf '%s\n' "$want" >"$stamp"
  log "installed: $("$PY" -c 'import confluent_kafka, pyarrow, pandas, sklearn; print("confluent-kafka", confluent_kafka.version()[0], "librdkafka", confluent_kafka.libversion()[0], "pyarrow", pyarrow.__version__, "pandas", pandas.__version__, "scikit-learn", sklearn.__version__)')"
}

case "${1:-install}" in
  install) install ;;
  path) printf '%s\n' "$PY" ;;
  test)
    shift
    install
    cd "$SDK"
    exec "$PY" -m pytest "$@"
    ;;
  *)
    echo "usage: $0 [install|path|test [PYTEST ARGS...]]" >&2
    exit 2
    ;;
esac
