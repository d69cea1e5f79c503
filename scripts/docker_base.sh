#!/usr/bin/env bash
# Build a local base image for the Dockerfile where Docker Hub cannot be reached (no python:3.11-slim):
# Debian bookworm's python3 (3.11) from Debian's own packages, plus this machine's CA bundle for pip.
#   bash scripts/docker_base.sh [IMAGE]      (default splineviz-base; needs root, debootstrap and docker)
#   docker build --build-arg BASE=splineviz-base --build-arg CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt ...
set -euo pipefail
image="${1:-splineviz-base}"
rootfs="$(mktemp -d)"
trap 'rm -rf "$rootfs"' EXIT
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$rootfs" \
  http://deb.debian.org/debian >/dev/null
cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
tar -C "$rootfs" -c . | docker import - "$image" >/dev/null
echo "$image"
