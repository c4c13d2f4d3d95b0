#!/usr/bin/env bash
# Install Debian's chromium for the browser tests of internal/report (headless,
# driven by chromedp; as root they pass --no-sandbox).
#
#   chromium.sh [install]   apt-get install chromium if no chromium is on PATH; print its version
#   chromium.sh version     print the version (exit 1 if chromium is missing)
set -euo pipefail

SCRIPT_NAME="chromium.sh"
# shellcheck source=deployments/local/_common.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/_common.sh"

find_chromium() { command -v chromium || command -v chromium-browser || true; }

version() {
  local bin
  bin="$(find_chromium)"
  [[ -n "$bin" ]] || return 1
  "$bin" --headless --no-sandbox --version 2>/dev/null | sed -n 1p
}

install() {
  if v="$(version)"; then
    log "chromium is installed: $v"
    return 0
  fi
  [[ "$(id -u)" == 0 ]] || die "chromium is missing and apt-get needs root: run sudo $0 install (or apt-get install -y chromium)"
  log "apt-get install chromium"
  DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core </dev/null >/dev/null
  v="$(version)" || die "chromium installed but does not run"
  log "chromium is installed: $v"
}

case "${1:-install}" in
  install) install ;;
  version) version ;;
  *) die "usage: $0 [install|version]" ;;
esac
