#!/usr/bin/env bash
# Install Debian's chromium for the headless report test (test/report/*). Idempotent: does nothing when a
# chromium binary is already on PATH. Needs root (or sudo) and the Debian apt mirrors.
set -euo pipefail
log() { printf 'install-chromium: %s\n' "$*" >&2; }

for candidate in chromium chromium-browser; do
  if command -v "$candidate" >/dev/null 2>&1; then
    log "$(command -v "$candidate") is already installed"
    exit 0
  fi
done

SUDO=''
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO='sudo'; else
    log 'need root (or sudo) to apt-get install chromium'; exit 1
  fi
fi

# Another apt run (set-up, another test) may hold the lock: wait for it rather than fail.
export DEBIAN_FRONTEND=noninteractive
for attempt in 1 2 3 4 5 6 7 8 9 10; do
  if $SUDO apt-get -o DPkg::Lock::Timeout=120 update -qq && \
     $SUDO apt-get -o DPkg::Lock::Timeout=120 install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null; then
    log "installed $(command -v chromium)"
    exit 0
  fi
  log "apt-get failed (attempt $attempt); retrying in 10 s"
  sleep 10
done
log 'could not install chromium with apt-get'
exit 1
