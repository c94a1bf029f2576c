#!/usr/bin/env bash
# Build the evalpipe sandbox image.
#
#   bash sandbox/build-image.sh [--from-dockerfile [--base-image IMAGE]] [--force] [--print-tag] [--print-base-tag]
#
# Default (no registry needed): Debian packages -> root file system (debootstrap --variant=minbase, needs root)
# -> `docker import` as evalpipe-sandbox-base:<hash>, then the runner is copied in and committed as
# evalpipe-sandbox:<recipe hash>. --from-dockerfile builds sandbox/Dockerfile instead: from debian:bookworm-slim
# (needs a registry), or from --base-image IMAGE, e.g. a local image whose python3 has the standard library
# (then no network is needed; --print-base-tag names the base image the default build leaves). The tag's hash
# covers every recipe file, so a changed recipe builds a new image; an image that already exists is kept unless
# --force.
#
# Recipe hash (src/sandbox/image-recipe.ts computes the same): the first 12 hex digits of
#   sha256( `sha256sum sandbox/Dockerfile sandbox/build-image.sh sandbox/packages.txt sandbox/runner.py` )
# run from the repository root.
#
# Environment: EVALPIPE_DEBIAN_MIRROR (default http://deb.debian.org/debian),
#              EVALPIPE_CACHE_DIR (default ~/.cache/evalpipe) for downloaded .deb files.
set -euo pipefail

ROOTFS_VERSION=1 # bump when the root file system steps below change
SUITE=bookworm
SANDBOX_UID=10001
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log() { printf 'sandbox build: %s\n' "$*" >&2; }
die() { printf 'sandbox build: error: %s\n' "$*" >&2; exit 1; }

from_dockerfile=0 force=0 print_tag=0 print_base_tag=0 base_image=''
while [ $# -gt 0 ]; do
  case "$1" in
    --from-dockerfile) from_dockerfile=1 ;;
    --base-image) [ $# -ge 2 ] && [ -n "$2" ] || die "--base-image needs an image name"; base_image="$2"; shift ;;
    --base-image=?*) base_image="${1#--base-image=}" ;;
    --force) force=1 ;;
    --print-tag) print_tag=1 ;;
    --print-base-tag) print_base_tag=1 ;;
    *) die "unknown option '$1' (use --from-dockerfile, --base-image IMAGE, --force, --print-tag or --print-base-tag)" ;;
  esac
  shift
done
[ -z "$base_image" ] || [ "$from_dockerfile" = 1 ] || die "--base-image only applies to --from-dockerfile"

recipe_hash="$(cd "$repo" && sha256sum sandbox/Dockerfile sandbox/build-image.sh sandbox/packages.txt sandbox/runner.py | sha256sum | cut -c1-12)"
tag="evalpipe-sandbox:$recipe_hash"
base_hash="$( (echo "rootfs=$ROOTFS_VERSION suite=$SUITE uid=$SANDBOX_UID"; grep -v '^#' "$repo/sandbox/packages.txt") | sha256sum | cut -c1-12)"
base_tag="evalpipe-sandbox-base:$base_hash"
if [ "$print_tag" = 1 ]; then echo "$tag"; exit 0; fi
if [ "$print_base_tag" = 1 ]; then echo "$base_tag"; exit 0; fi

command -v docker >/dev/null 2>&1 || die "the docker CLI is not installed (run: bash scripts/start-docker.sh)"
docker info >/dev/null 2>&1 || die "the Docker daemon is not reachable (run: bash scripts/start-docker.sh)"

if [ "$force" = 0 ] && docker image inspect "$tag" >/dev/null 2>&1; then
  log "$tag is already built"
  echo "$tag"
  exit 0
fi

labels=(--label "evalpipe.sandbox=1" --label "evalpipe.recipe=$recipe_hash")
if [ "$from_dockerfile" = 1 ]; then
  build_args=()
  [ -z "$base_image" ] || build_args=(--build-arg "BASE_IMAGE=$base_image")
  log "building $tag from sandbox/Dockerfile (base ${base_image:-debian:bookworm-slim})"
  # The classic builder (it uses a local base image as it is, and needs no buildx plugin), on the host's network
  # (no Docker bridge needed; only apt-get, when the base lacks python3, goes out).
  DOCKER_BUILDKIT=0 docker build --network host --force-rm "${labels[@]}" "${build_args[@]}" -t "$tag" -f "$repo/sandbox/Dockerfile" "$repo/sandbox" >&2 \
    || die "docker build failed; without a registry, pass --base-image with a local image that has python3 (e.g. $base_tag after a default build)"
  echo "$tag"
  exit 0
fi

if [ "$force" = 1 ] || ! docker image inspect "$base_tag" >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || die "building the root file system needs root (debootstrap): run with sudo, or use --from-dockerfile"
  if ! command -v debootstrap >/dev/null 2>&1; then
    log "installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=180 install -y -qq debootstrap >/dev/null \
      || { apt-get -o DPkg::Lock::Timeout=180 update -qq \
        && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=180 install -y -qq debootstrap >/dev/null; } \
      || die "could not install debootstrap (apt-get install debootstrap)"
  fi
  mirror="${EVALPIPE_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
  cache="${EVALPIPE_CACHE_DIR:-$HOME/.cache/evalpipe}/debootstrap-$SUITE"
  mkdir -p "$cache"
  packages="$(grep -v '^#' "$repo/sandbox/packages.txt" | grep -v '^[[:space:]]*$' | paste -sd, -)"
  rootfs="$(mktemp -d /tmp/evalpipe-rootfs.XXXXXX)"
  trap 'rm -rf "$rootfs"' EXIT
  log "debootstrap $SUITE (minbase + $packages) from $mirror"
  debootstrap --variant=minbase --include="$packages" --cache-dir="$cache" "$SUITE" "$rootfs" "$mirror" >&2 \
    || die "debootstrap failed (is $mirror reachable? set EVALPIPE_DEBIAN_MIRROR)"
  chroot "$rootfs" python3 -c 'import math, re, string, collections, itertools, functools, heapq, hashlib, typing, json, ctypes, selectors, resource' \
    || die "the root file system's python3 lacks a standard library module"
  echo "sandbox:x:$SANDBOX_UID:$SANDBOX_UID:evalpipe sandbox:/tmp:/usr/sbin/nologin" >>"$rootfs/etc/passwd"
  echo "sandbox:x:$SANDBOX_UID:" >>"$rootfs/etc/group"
  mkdir -p "$rootfs/opt/evalpipe"
  # Trim what a candidate never needs: docs, manuals, locales, apt's caches.
  rm -rf "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/* \
    "$rootfs"/var/cache/apt/* "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*
  log "importing the root file system as $base_tag"
  tar -C "$rootfs" -c . | docker import --change "LABEL evalpipe.sandbox=1" - "$base_tag" >/dev/null
  rm -rf "$rootfs"
  trap - EXIT
fi

log "adding the runner: $tag"
cid="$(docker create "$base_tag" /bin/true)"
trap 'docker rm -f "$cid" >/dev/null 2>&1 || true' EXIT
docker cp "$repo/sandbox/runner.py" "$cid:/opt/evalpipe/runner.py"
docker commit \
  --change "USER $SANDBOX_UID:$SANDBOX_UID" \
  --change "WORKDIR /tmp" \
  --change "ENV PYTHONDONTWRITEBYTECODE=1 LANG=C.UTF-8 HOME=/tmp" \
  --change 'CMD ["python3", "-I", "/opt/evalpipe/runner.py"]' \
  --change "LABEL evalpipe.sandbox=1 evalpipe.recipe=$recipe_hash" \
  "$cid" "$tag" >/dev/null
log "built $tag"
echo "$tag"
