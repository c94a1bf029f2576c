#!/usr/bin/env bash
# Make a Docker daemon reachable for the evalpipe sandbox. Idempotent: safe to run again.
#  1. installs docker.io (Debian) when dockerd is missing;
#  2. starts dockerd in the background when `docker info` fails, trying storage drivers
#     in order (overlay2, fuse-overlayfs, vfs) until one comes up;
#  3. waits (bounded) until `docker info` answers.
# Needs root (or sudo). Logs go to ${EVALPIPE_DOCKERD_LOG:-/tmp/dockerd.log}.
set -euo pipefail

log() { printf 'start-docker: %s\n' "$*" >&2; }
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
DOCKERD_LOG="${EVALPIPE_DOCKERD_LOG:-/tmp/dockerd.log}"
WAIT_SECONDS="${EVALPIPE_DOCKERD_WAIT:-60}"

if docker info >/dev/null 2>&1; then
  log "docker daemon already running"
  exit 0
fi

if ! command -v dockerd >/dev/null 2>&1; then
  log "dockerd not found: installing docker.io from Debian"
  export DEBIAN_FRONTEND=noninteractive
  # Another apt run (set-up scripts, CI steps) may hold the lock: wait for it rather than fail.
  $SUDO apt-get -o DPkg::Lock::Timeout=180 update -qq
  $SUDO apt-get -o DPkg::Lock::Timeout=180 install -y -qq docker.io >/dev/null
fi

wait_for_docker() {
  local pid="$1" deadline=$((SECONDS + WAIT_SECONDS))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if docker info >/dev/null 2>&1; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then return 1; fi
    sleep 0.5
  done
  return 1
}

# A dockerd may be starting already (another script run): give it a chance first.
if pgrep -x dockerd >/dev/null 2>&1; then
  log "dockerd is running but not answering yet; waiting"
  if wait_for_docker "$(pgrep -x dockerd | head -n1)"; then exit 0; fi
  log "the running dockerd never answered; see $DOCKERD_LOG" 
  exit 1
fi

drivers="${EVALPIPE_DOCKER_STORAGE_DRIVER:-overlay2 fuse-overlayfs vfs}"
for driver in $drivers; do
  log "starting dockerd (storage driver $driver), log: $DOCKERD_LOG"
  # setsid detaches dockerd from this shell so it outlives the script.
  $SUDO setsid dockerd --storage-driver="$driver" >>"$DOCKERD_LOG" 2>&1 < /dev/null &
  pid=$!
  if wait_for_docker "$pid"; then
    log "docker daemon is up (storage driver $driver)"
    exit 0
  fi
  log "dockerd did not come up with $driver"
  $SUDO kill "$pid" 2>/dev/null || true
  sleep 1
  $SUDO rm -f /var/run/docker.pid
done
log "could not start dockerd; the last lines of $DOCKERD_LOG:"
tail -n 20 "$DOCKERD_LOG" >&2 || true
exit 1
