#!/usr/bin/env bash
# The whole test suite, from a fresh clone: set-up, Docker + sandbox image, Chromium and zstd, type check, biome,
# ruff, pytest, vitest.
# This is the README's test command; .ci/run calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf 'test: %s\n' "$*" >&2; }

bash scripts/setup.sh
log "starting Docker and building the sandbox image"
bash scripts/start-docker.sh
node bin/evalpipe.js sandbox build >&2
log "installing headless Chromium (the HTML report test renders report.html)"
bash scripts/install-chromium.sh
log "installing the zstd command-line tool (the ZSTD parquet tests compress their pages with it)"
bash scripts/install-zstd.sh

log "type check"
npx tsc --noEmit -p tsconfig.test.json
log "biome (TypeScript lint and format; \`npx biome check --write .\` fixes what it can)"
npx biome check .
log "ruff"
.venv/bin/ruff check cuda bench sandbox
.venv/bin/ruff format --check cuda bench sandbox
log "pytest (engine, CPU)"
TRITON_INTERPRET=1 .venv/bin/python -m pytest -q cuda/tests
log "vitest (CLI, pipeline, sandbox with the real Docker daemon, engine process)"
npx vitest run
