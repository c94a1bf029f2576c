#!/usr/bin/env bash
# Build the evalpipe sandbox image without the CLI (CI runs this after scripts/start-docker.sh).
# Same as `evalpipe sandbox build`: Debian packages -> root file system (debootstrap) -> docker import,
# tagged evalpipe-sandbox:<recipe hash>; kept when already built. Options pass through:
#   --from-dockerfile  build sandbox/Dockerfile instead (needs a registry for debian:bookworm-slim, unless...)
#   --base-image IMAGE ...with --from-dockerfile: build FROM this image; a local one whose python3 has the
#                      standard library (e.g. the one --print-base-tag names) needs no registry and no apt-get
#   --force            rebuild even when the image exists
#   --print-tag        print the tag this recipe builds, and nothing else
#   --print-base-tag   print the tag of the base image the default build imports (evalpipe-sandbox-base:<hash>)
set -euo pipefail
exec bash "$(dirname "$0")/../sandbox/build-image.sh" "$@"
