#!/usr/bin/env bash
# Give tests/test_docker.py what it needs on a fresh Debian machine (as root): Docker's daemon and a base image.
# Docker Hub is out of reach there, so the base comes from Debian's packages (scripts/docker_base.sh).
# Exits non-zero when a daemon cannot run (then the Docker tests skip, and say why).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v dockerd >/dev/null 2>&1 || ! command -v debootstrap >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io debootstrap >/dev/null
fi
if ! docker info >/dev/null 2>&1; then
  nohup dockerd >/tmp/splineviz-dockerd.log 2>&1 &
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { echo "dockerd did not start: $(tail -3 /tmp/splineviz-dockerd.log)" >&2; exit 1; }
fi
docker image inspect splineviz-base >/dev/null 2>&1 || bash scripts/docker_base.sh splineviz-base
