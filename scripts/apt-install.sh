#!/usr/bin/env bash
# Install Debian packages for a tool the tests need, once: does nothing when any of the probe commands is already
# on PATH. Waits for another apt run's lock and retries apt-get 10 times (set-up and other installs may run beside
# it). Needs root (or sudo) and the Debian apt mirrors.
#   bash scripts/apt-install.sh NAME "PROBE [PROBE...]" PACKAGE [PACKAGE...]
# e.g. bash scripts/apt-install.sh chromium "chromium chromium-browser" chromium fonts-dejavu-core
set -euo pipefail
if [ "$#" -lt 3 ]; then
  echo 'usage: apt-install.sh NAME "PROBE [PROBE...]" PACKAGE [PACKAGE...]' >&2
  exit 2
fi
name="$1" probes="$2"
shift 2
log() { printf 'install-%s: %s\n' "$name" "$*" >&2; }

for candidate in $probes; do
  if command -v "$candidate" >/dev/null 2>&1; then
    log "$(command -v "$candidate") is already installed"
    exit 0
  fi
done

SUDO=''
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO='sudo'; else
    log "need root (or sudo) to apt-get install $*"; exit 1
  fi
fi

export DEBIAN_FRONTEND=noninteractive
for attempt in 1 2 3 4 5 6 7 8 9 10; do
  if $SUDO apt-get -o DPkg::Lock::Timeout=120 update -qq && \
     $SUDO apt-get -o DPkg::Lock::Timeout=120 install -y -qq --no-install-recommends "$@" >/dev/null; then
    for candidate in $probes; do
      if command -v "$candidate" >/dev/null 2>&1; then
        log "installed $(command -v "$candidate")"
        exit 0
      fi
    done
    log "apt-get installed $* but none of $probes is on PATH"
    exit 1
  fi
  log "apt-get failed (attempt $attempt); retrying in 10 s"
  sleep 10
done
log "could not install $* with apt-get"
exit 1
