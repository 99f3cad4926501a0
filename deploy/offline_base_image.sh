#!/usr/bin/env bash
# Builds a Python 3.11 base image from Debian packages, for machines that reach Debian and PyPI
# but not Docker Hub (this project's development and CI machines). It carries the host's CA
# bundle, so pip inside `docker build` can reach PyPI through the same TLS-inspecting proxy, and
# the host's CPU torch wheel where one lies in /opt/wheels. Use it with:
#   deploy/check_image.sh --build-arg PYTHON_IMAGE=starcoder-playground-base:offline
# Everywhere else the Dockerfile's default, python:3.11-slim-bookworm, is the right base.
set -euo pipefail
TAG=${1:-starcoder-playground-base:offline}
ROOTFS=$(mktemp -d)
trap 'rm -rf "$ROOTFS"' EXIT

command -v debootstrap >/dev/null || { apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null; }
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
  bookworm "$ROOTFS" http://deb.debian.org/debian >/dev/null
cp /etc/ssl/certs/ca-certificates.crt "$ROOTFS/etc/ssl/certs/ca-certificates.crt"
{
  echo "[global]"
  echo "cert = /etc/ssl/certs/ca-certificates.crt"
  # This machine keeps its CPU build of torch on disk rather than on the package index.
  if ls /opt/wheels/torch-*+cpu-*.whl >/dev/null 2>&1; then
    mkdir -p "$ROOTFS/opt/wheels" && cp /opt/wheels/torch-*+cpu-*.whl "$ROOTFS/opt/wheels/"
    echo "find-links = /opt/wheels"
  fi
} > "$ROOTFS/etc/pip.conf"
tar -C "$ROOTFS" -c . | docker import - "$TAG" >/dev/null
echo "built $TAG: $(docker run --rm "$TAG" python3 --version)"
