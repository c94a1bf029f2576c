#!/usr/bin/env bash
# Install Debian's zstd command-line tool for the ZSTD parquet tests (src/datasets/parquet-zstd.test.ts compress
# their pages with it: Node 20's zlib has no zstd). Idempotent: does nothing when zstd is already on PATH.
# Needs root (or sudo) and the Debian apt mirrors.
set -euo pipefail
log() { printf 'install-zstd: %s\n' "$*" >&2; }

if command -v zstd >/dev/null 2>&1; then
  log "$(command -v zstd) is already installed"
  exit 0
fi

SUDO=''
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO='sudo'; else
    log 'need root (or sudo) to apt-get install zstd'; exit 1
  fi
fi

# Another apt run (set-up, the Chromium install) may hold the lock: wait for it rather than fail.
export DEBIAN_FRONTEND=noninteractive
for attempt in 1 2 3 4 5 6 7 8 9 10; do
  if $SUDO apt-get -o DPkg::Lock::Timeout=120 update -qq && \
     $SUDO apt-get -o DPkg::Lock::Timeout=120 install -y -qq --no-install-recommends zstd >/dev/null; then
    log "installed $(command -v zstd)"
    exit 0
  fi
  log "apt-get failed (attempt $attempt); retrying in 10 s"
  sleep 10
done
log 'could not install zstd with apt-get'
exit 1
