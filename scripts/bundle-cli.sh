#!/usr/bin/env bash
# Bundle the CLI into one file plus an xz-compressed copy of this machine's node binary, under .carry/
# (git-ignored), for end-to-end runs on a machine that has Python and a GPU but no Node.js or npm registry.
# There: `xz -d < .carry/node.xz > /tmp/node && chmod +x /tmp/node && /tmp/node .carry/evalpipe.mjs run ...`
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .carry
npx esbuild test/support/cli-entry.ts --bundle --platform=node --target=node20 --format=esm \
  --outfile=.carry/evalpipe.mjs --log-level=error --loader:.node=empty --external:isolated-vm \
  --banner:js="import { createRequire as __createRequire } from 'node:module'; import { fileURLToPath as __fileURLToPath } from 'node:url'; import { dirname as __pathDirname } from 'node:path'; const require = __createRequire(import.meta.url); const __filename = __fileURLToPath(import.meta.url); const __dirname = __pathDirname(__filename);"
if [ ! -f .carry/node.xz ] || [ "$(command -v node)" -nt .carry/node.xz ]; then
  xz -T2 -6 -c "$(command -v node)" > .carry/node.xz
fi
ls -la .carry >&2
