#!/usr/bin/env bash
# Build the evalpipe sandbox image without the CLI (CI runs this after scripts/start-docker.sh).
# Same as `evalpipe sandbox build`: Debian packages -> root file system (debootstrap) -> docker import,
# tagged evalpipe-sandbox:<recipe hash>; kept when already built. Options pass through:
#   --from-dockerfile  build sandbox/Dockerfile instead (needs a registry)
#   --force            rebuild even when the image exists
#   --print-tag        print the tag this recipe builds, and nothing else
set -euo pipefail
exec bash "$(dirname "$0")/../sandbox/build-image.sh" "$@"
