#!/usr/bin/env bash
# The service's main job, end to end on this machine with no GPU and no internet: set up,
# start the API and a worker, localize a real issue in a real Python code base (requests,
# from Debian's python3-requests package, made into a git repository), print the answer.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

demo=.cache/demo
src=/usr/lib/python3/dist-packages/requests
if [ ! -d "$src" ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-requests >/dev/null 2>&1 ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-requests >/dev/null; }
fi
if [ ! -d "$demo/requests.git" ]; then
  rm -rf "$demo/work"; mkdir -p "$demo/work"
  cp -r "$src" "$demo/work/requests"
  find "$demo/work" -name __pycache__ -prune -exec rm -rf {} +
  git -C "$demo/work" init -q -b main
  git -C "$demo/work" -c user.name=demo -c user.email=demo@localhost add -A
  git -C "$demo/work" -c user.name=demo -c user.email=demo@localhost commit -qm "requests from Debian's python3-requests"
  git clone -q --bare "$demo/work" "$demo/requests.git"
fi
commit=$(git --git-dir "$demo/requests.git" rev-parse HEAD)

export ALLOW_FILE_URLS=true API_PORT="${API_PORT:-8080}" LOG_LEVEL="${LOG_LEVEL:-warn}"
node --import tsx src/worker/main.ts >"$demo/worker.log" 2>&1 &
worker=$!
node --import tsx src/api/server.ts >"$demo/api.log" 2>&1 &
api=$!
trap 'kill -TERM $worker $api 2>/dev/null; wait 2>/dev/null' EXIT
# Ready, and ours: another service already on the port (a compose stack) would answer too.
ready() { kill -0 "$api" 2>/dev/null && node -e 'fetch(process.argv[1]).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))' "http://127.0.0.1:$API_PORT/readyz"; }
for _ in $(seq 1 120); do
  ready && break
  kill -0 "$api" 2>/dev/null || break
  sleep 0.5
done
ready || { echo "demo: the service did not become ready (is port $API_PORT taken?); see $demo/*.log" >&2; exit 1; }

# As a URL: a checkout under a path with blanks in it is %20 there (git reads it back).
url=$(node -e 'process.stdout.write(require("node:url").pathToFileURL(process.argv[1]).href)' "$PWD/$demo/requests.git")
node bin/localize.mjs --api "http://127.0.0.1:$API_PORT" --repo "$url" --commit "$commit" \
  --issue-file scripts/demo/issue.md --no-cache "$@"
