#!/usr/bin/env bash
# Installs and starts what the service and its tests need on a fresh Debian 12 machine:
# Redis, the Docker engine, the sandbox image (built offline), and the npm packages.
# Idempotent: what is already there and running is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."
# dockerd and debootstrap are in sbin, which a plain user's PATH on Debian leaves out.
export PATH="$PATH:/usr/sbin:/sbin"

need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v dockerd >/dev/null || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v git >/dev/null || need+=(git)
command -v docker-compose >/dev/null || need+=(docker-compose)
# The URL-policy tests put a "public" address on loopback with ip(8).
command -v ip >/dev/null || need+=(iproute2)
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi

if ! redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
  echo "setup: starting redis on 127.0.0.1:6379"
  redis-server --bind 127.0.0.1 --port 6379 --daemonize yes --save "" --appendonly no >/dev/null
  # It forks before it listens: wait for it, and say so if it never does.
  for _ in $(seq 1 50); do redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && break; sleep 0.1; done
  redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 || { echo "setup: redis did not start" >&2; exit 1; }
fi

if ! docker info >/dev/null 2>&1; then
  echo "setup: starting dockerd"
  # A session of its own: a Ctrl-C of the command that started it (npm start, the demo) must
  # not stop the engine and every sandbox on it.
  setsid -f dockerd >/var/log/codescout-dockerd.log 2>&1 </dev/null
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || { echo "setup: dockerd did not start; see /var/log/codescout-dockerd.log" >&2; exit 1; }
fi

bash docker/build-sandbox-image.sh

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  # `npm ci` refuses this lock file where the registry lacks some of msgpackr-extract's
  # optional per-platform packages (darwin, win32); `npm install` installs the same locked
  # versions and skips what this platform does not need.
  echo "setup: npm install (from package-lock.json)"
  npm install --no-audit --no-fund --loglevel=error
fi
echo "setup: ready"
