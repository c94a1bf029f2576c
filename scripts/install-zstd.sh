#!/usr/bin/env bash
# Install Debian's zstd command-line tool for the ZSTD parquet tests (src/datasets/parquet-zstd.test.ts compress
# their pages with it: Node 20's zlib has no zstd). Idempotent: does nothing when zstd is already on PATH.
# Needs root (or sudo) and the Debian apt mirrors.
set -euo pipefail
exec bash "$(dirname "$0")/apt-install.sh" zstd zstd zstd
