#!/usr/bin/env bash
# Regenerate the Docker image's lock files from requirements.txt (Linux x86_64, CPython 3.11, like the image):
#   requirements.lock        every package but torch, exact versions and sha256 hashes, installed from PyPI only
#   requirements-torch.lock  torch alone, installed from the PyTorch CPU index only
# Two files because pip has no per-package index: each install step gets one index and --no-deps, so neither
# index can serve a name the other should (no --extra-index-url anywhere).
#   bash scripts/lock.sh [TORCH_WHEEL_DIR]   # a folder holding the torch CPU wheel (default: pip's find-links)
set -euo pipefail
cd "$(dirname "$0")/.."
wheels="${1:-$(pip config get global.find-links 2>/dev/null || true)}"
[ -n "$wheels" ] || { echo "usage: bash scripts/lock.sh TORCH_WHEEL_DIR (a folder with the torch CPU wheel)" >&2; exit 2; }
tools="$(mktemp -d)"
trap 'rm -rf "$tools"' EXIT
python3 -m venv "$tools/venv"
PIP_CONFIG_FILE=/dev/null "$tools/venv/bin/pip" install -q pip-tools
# pip-compile resolves for this machine's Python; the image may have an older 3.11 (Debian's 3.11.2), where redis
# also needs async-timeout (a marker for Python < 3.11.3), so it is locked for every 3.11.
echo "async-timeout>=4.0.3" > "$tools/older-3.11.in"
# Only PyPI plus the folder with the CPU torch wheel; the CPU build (2.13.0+cpu) outranks PyPI's CUDA 2.13.0.
PIP_CONFIG_FILE=/dev/null PIP_FIND_LINKS="" "$tools/venv/bin/pip-compile" -q --generate-hashes --allow-unsafe \
  --strip-extras --no-emit-index-url --no-emit-find-links --index-url https://pypi.org/simple \
  --find-links "$wheels" --output-file "$tools/all.lock" requirements.txt "$tools/older-3.11.in"
# Split the torch entry (its "torch==" line and the indented lines under it) into its own file.
awk -v torch=requirements-torch.lock -v rest=requirements.lock '
  BEGIN { print "# torch only, from the PyTorch CPU index (see scripts/lock.sh)" > torch
          print "# everything but torch, from PyPI (see scripts/lock.sh)" > rest }
  /^[^ #]/ { in_torch = ($0 ~ /^torch==/) }
  /^#/ { next }
  { print > (in_torch ? torch : rest) }' "$tools/all.lock"
grep -q '^torch==2.13.0+cpu' requirements-torch.lock || { echo "torch did not resolve to the CPU build" >&2; exit 1; }
! grep -qi '^nvidia' requirements.lock || { echo "a CUDA package got into the lock" >&2; exit 1; }
echo "wrote requirements.lock ($(grep -c '==' requirements.lock) packages) and requirements-torch.lock"
