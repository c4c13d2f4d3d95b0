#!/usr/bin/env bash
# Install MLServer with its scikit-learn runtime from PyPI into a virtualenv
# under the cache dir, pinned, and check it. The serving-stack test
# (ingest/serving, TestIntegrationMLServer) finds it with `mlserver.sh python`.
#
#   mlserver.sh [install]  create $VIGIL_CACHE/mlserver-venv and pip install the pins if missing or different
#   mlserver.sh python     print the venv's python (exit 1 if MLServer is not installed there)
#   mlserver.sh version    print the installed mlserver version (exit 1 if missing)
#
# Environment: VIGIL_PYTHON (python3) creates the venv; MLServer 1.7 wants Python >= 3.9, < 3.13.
set -euo pipefail

SCRIPT_NAME="mlserver.sh"
# shellcheck source=deployments/local/_common.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/_common.sh"

MLSERVER_VERSION="1.7.1"
SKLEARN_VERSION="1.6.1"
PY="${VIGIL_PYTHON:-python3}"
VENV="$VIGIL_CACHE/mlserver-venv"
VPY="$VENV/bin/python"

installed_version() {
  [[ -x "$VPY" ]] || return 1
  "$VPY" - <<'PY' 2>/dev/null
import mlserver, mlserver_sklearn, sklearn
print(mlserver.__version__, sklearn.__version__)
PY
}

install() {
  local have="" t0=$SECONDS tmp
  have="$(installed_version)" || have=""
  if [[ "$have" == "$MLSERVER_VERSION $SKLEARN_VERSION" ]]; then
    log "mlserver $MLSERVER_VERSION (scikit-learn $SKLEARN_VERSION) is installed in $VENV"
    return 0
  fi
  command -v "$PY" >/dev/null || die "$PY not found"
  tmp="$(mktemp)"
  if [[ ! -x "$VPY" ]]; then
    mkdir -p "$VIGIL_CACHE"
    if ! "$PY" -m venv "$VENV" >"$tmp" 2>&1; then
      # Debian's python3 needs python3-venv for ensurepip.
      if command -v apt-get >/dev/null && [[ $(id -u) -eq 0 ]]; then
        log "python3 -m venv failed; apt-get install python3-venv"
        apt-get install -y -q python3-venv >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q python3-venv >/dev/null; }
        rm -rf "$VENV"
        "$PY" -m venv "$VENV" >"$tmp" 2>&1 || { tail -n 20 "$tmp" >&2; die "cannot create a virtualenv in $VENV"; }
      else
        tail -n 20 "$tmp" >&2
        die "cannot create a virtualenv in $VENV (install python3-venv)"
      fi
    fi
  fi
  log "pip install mlserver==$MLSERVER_VERSION mlserver-sklearn==$MLSERVER_VERSION scikit-learn==$SKLEARN_VERSION into $VENV${have:+ (found $have)}"
  if ! PIP_DISABLE_PIP_VERSION_CHECK=1 "$VPY" -m pip install -q --no-input \
      "mlserver==$MLSERVER_VERSION" "mlserver-sklearn==$MLSERVER_VERSION" "scikit-learn==$SKLEARN_VERSION" </dev/null >"$tmp" 2>&1; then
    tail -n 30 "$tmp" >&2
    rm -f "$tmp"
    die "pip install mlserver failed"
  fi
  rm -f "$tmp"
  have="$(installed_version)" || die "mlserver installed but 'import mlserver, mlserver_sklearn, sklearn' fails"
  log "mlserver ${have% *} (scikit-learn ${have#* }) installed in $VENV in $((SECONDS - t0))s"
}

case "${1:-install}" in
  install) install ;;
  python)
    installed_version >/dev/null || die "MLServer is not installed in $VENV; run: $0 install"
    printf '%s\n' "$VPY"
    ;;
  version)
    v="$(installed_version)" || die "MLServer is not installed in $VENV; run: $0 install"
    printf '%s\n' "${v% *}"
    ;;
  *)
    echo "usage: $0 [install|python|version]" >&2
    exit 2
    ;;
esac
