#!/usr/bin/env bash
# Builds every image of the stack without a registry: the debootstrap base, the service
# image (api + worker), Redis, and the sandbox image. Each image carries a hash of its
# inputs and is left alone when it is current (FORCE=1 rebuilds).
set -euo pipefail
cd "$(dirname "$0")/.."
base="${SERVICE_BASE_IMAGE:-codescout-base:bookworm}"
docker/build-base-image.sh "$base" "git,tar,curl,ca-certificates,tini,redis-server"

build_if_stale() { # tag hash dockerfile context
  local current
  current="$(docker image inspect -f '{{ index .Config.Labels "codescout.inputs" }}' "$1" 2>/dev/null || true)"
  if [ "$current" = "$2" ] && [ -z "${FORCE:-}" ]; then echo "$1 is current ($2)"; return; fi
  docker build -q -f "$3" --build-arg BASE_IMAGE="$base" --label "codescout.inputs=$2" -t "$1" "$4" >/dev/null
  echo "built $1 ($2)"
}

hash_of() { { for p in "$@"; do find "$p" -type f -not -path '*/node_modules/*' | sort | xargs sha256sum; done; node --version; docker image inspect -f '{{.Id}}' "$base"; } | sha256sum | cut -c1-32; }

ctx="$(mktemp -d /tmp/codescout-service-ctx.XXXXXX)"
trap 'rm -rf "$ctx"' EXIT
service_hash="$(hash_of src package.json package-lock.json tsconfig.json tsconfig.build.json docker/service.Dockerfile docker/entrypoint.sh)"
current="$(docker image inspect -f '{{ index .Config.Labels "codescout.inputs" }}' codescout-service:latest 2>/dev/null || true)"
if [ "$current" != "$service_hash" ] || [ -n "${FORCE:-}" ]; then
  [ -d node_modules ] || npm install --no-audit --no-fund --loglevel=error
  cp "$(command -v node)" "$ctx/node"
  cp -r "$(dirname "$(readlink -f "$(command -v npm)")")/.." "$ctx/npm"
  mkdir "$ctx/app"
  cp -r package.json package-lock.json tsconfig.json tsconfig.build.json src node_modules "$ctx/app/"
  cp docker/entrypoint.sh "$ctx/"
fi
build_if_stale codescout-service:latest "$service_hash" docker/service.Dockerfile "$ctx"
build_if_stale codescout-redis:latest "$(hash_of docker/redis.Dockerfile)" docker/redis.Dockerfile docker
bash docker/build-sandbox-image.sh
