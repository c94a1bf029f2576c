#!/usr/bin/env bash
# One-time (and idempotent) set-up on a fresh machine: Node dependencies, the CLI build, and the engine's Python
# virtualenv (.venv). Needs Node 20+ with npm and Python 3.10+.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf 'setup: %s\n' "$*" >&2; }

# isolated-vm (the JS/TS sandbox of multipl-e-js/-ts) compiles from source with node-gyp on npm ci: it needs a C++
# compiler, make and python3 (Debian: build-essential python3).
if ! command -v g++ >/dev/null || ! command -v make >/dev/null || ! command -v python3 >/dev/null; then
  log "installing the C++ toolchain isolated-vm builds with (build-essential python3)"
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq build-essential python3 >&2
fi
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "installing Node dependencies (npm ci)"
  npm ci --no-audit --no-fund >&2
fi
log "building the CLI (tsc -> dist/)"
npx tsc -p tsconfig.json >&2

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  log "creating the engine virtualenv (.venv)"
  "$PYTHON" -m venv .venv
fi
# Where pip's configuration names a local package index (an offline wheelhouse), resolve from it alone: an
# unreachable default index makes pip retry for minutes.
if [ -z "${PIP_INDEX_URL:-}" ]; then
  local_index=$(.venv/bin/pip config list 2>/dev/null | grep -o "file://[^ ']*simple" | head -n1 || true)
  if [ -n "$local_index" ]; then export PIP_INDEX_URL="$local_index"; log "using the local package index $local_index"; fi
fi
stamp=.venv/.requirements.sha256
want=$(sha256sum cuda/requirements.txt | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  log "installing the engine's Python packages (cuda/requirements.txt)"
  .venv/bin/pip install --disable-pip-version-check -q -r cuda/requirements.txt >&2
  echo "$want" > "$stamp"
fi
log "ready: try \`node bin/evalpipe.js run --preset smoke\`"
