#!/usr/bin/env bash
# Install Debian's chromium for the headless report test (test/report/*). Idempotent: does nothing when a
# chromium binary is already on PATH. Needs root (or sudo) and the Debian apt mirrors.
set -euo pipefail
exec bash "$(dirname "$0")/apt-install.sh" chromium "chromium chromium-browser" chromium fonts-dejavu-core
