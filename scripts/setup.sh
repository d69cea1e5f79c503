#!/usr/bin/env bash
# Set up splineviz on a fresh Debian/Ubuntu machine: a virtualenv in .venv with the pinned CPU torch.
#   bash scripts/setup.sh          # what the app needs
#   bash scripts/setup.sh --dev    # plus test tools, Chromium + ChromeDriver (browser tests), redis-server (Celery test)
set -euo pipefail
cd "$(dirname "$0")/.."
dev=0
[ "${1:-}" = "--dev" ] && dev=1

if [ "$dev" = 1 ]; then
  missing=()
  for pair in chromium:chromium chromedriver:chromium-driver redis-server:redis-server; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair##*:}")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
if [ "$dev" = 1 ]; then
  .venv/bin/pip install -q -r requirements-dev.txt
else
  .venv/bin/pip install -q -r requirements.txt
fi
