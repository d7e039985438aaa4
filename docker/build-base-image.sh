#!/usr/bin/env bash
# Makes a Debian base image without any container registry: debootstrap a rootfs from
# Debian's package archive and `docker import` it. Both Dockerfiles build FROM it through
# their BASE_IMAGE argument where no registry can be reached.
#
#   docker/build-base-image.sh [TAG] [EXTRA_PACKAGES]
set -euo pipefail
tag="${1:-codescout-base:bookworm}"
extra="${2:-}"
suite="${DEBIAN_SUITE:-bookworm}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

include="ca-certificates${extra:+,$extra}"
# The image is labelled with what it was made of: a changed package list rebuilds it, where
# the tag alone would keep an image without the new package (and a build FROM it would need
# the network to install it).
made_of="$suite $include"
current="$(docker image inspect -f '{{ index .Config.Labels "codescout.base" }}' "$tag" 2>/dev/null || echo absent)"
[ "$current" = "<no value>" ] && current=""
# An image of someone else's (debian:bookworm-slim from a registry, as BASE_IMAGE) is theirs to keep.
if [ "${tag#codescout-}" = "$tag" ] && [ -z "$current" ]; then
  echo "base image $tag is not one of ours: used as it is"; exit 0
fi
if [ "$current" = "$made_of" ] && [ -z "${FORCE:-}" ]; then
  echo "base image $tag is current (FORCE=1 rebuilds)"; exit 0
fi
command -v debootstrap >/dev/null || { echo "debootstrap is missing: apt-get install -y debootstrap" >&2; exit 1; }

root="$(mktemp -d /tmp/codescout-rootfs.XXXXXX)"
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase --include="$include" "$suite" "$root" "$mirror" >/tmp/codescout-debootstrap.log 2>&1 \
  || { tail -20 /tmp/codescout-debootstrap.log >&2; exit 1; }
# Keep the image small: no apt lists, caches, docs or man pages.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/usr/share/doc/* "$root"/usr/share/man/*
tar -C "$root" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["bash"]' --change "LABEL codescout.base=\"$made_of\"" - "$tag" >/dev/null
echo "built $tag"
