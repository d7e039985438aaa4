#!/usr/bin/env bash
# Makes local bare repositories holding the base commits of a benchmark file, from local
# copies of the upstream repositories (e.g. snapshots brought by the search tool's fetch),
# so the service's repository cache can mirror them through a file:// URL. A copy that can
# be cloned whole is, history and all, as the service clones GitHub (the baseline reads the
# commits an issue names from the history). Snapshots that lack files of 4 MiB and more cannot
# be: then each base commit is fetched shallow. Either way each base commit is kept under
# refs/heads/base/<sha>. HISTORY=0 makes every repository shallow (the figures before stop 33).
# Each repository is DEST/<owner>+<name>.git, and DEST/<owner>/<name>.git links to it: a URL of
# that form gives the service the repository's own name, as a GitHub URL does, so an issue's
# `owner/name#123` cross-reference is read as this repository's (the form to use since stop 39).
#
#   scripts/eval-mirrors.sh BENCH.jsonl SOURCE_TEMPLATE DEST_DIR
#   e.g. scripts/eval-mirrors.sh ../shared/bench/swe-bench-lite-dev.jsonl '/work/.mirror/{owner}+{name}/repo' /work/evalmirrors
set -euo pipefail
bench=${1:?benchmark JSONL}
template=${2:?source path template}
dest=${3:?destination directory}
mkdir -p "$dest"
failed=0
# Read from a process substitution, not a pipe: the loop runs in this shell, and its count of failures stays.
while read -r repo sha; do
  owner=${repo%%/*}; name=${repo##*/}
  src=${template//\{owner\}/$owner}; src=${src//\{name\}/$name}
  out="$dest/$owner+$name.git"
  if [ ! -d "$out" ]; then
    tmp="$out.tmp-$$"
    rm -rf "$tmp"
    if [ "${HISTORY:-1}" != 0 ] && git clone -q --bare "file://$src" "$tmp" 2>/dev/null; then
      mv "$tmp" "$out"
      echo "eval-mirrors: $repo: cloned whole" >&2
    else
      rm -rf "$tmp"
      git init -q --bare "$out"
    fi
  fi
  mkdir -p "$dest/$owner"
  [ -e "$dest/$owner/$name.git" ] || ln -s "../$owner+$name.git" "$dest/$owner/$name.git"
  if git --git-dir "$out" rev-parse -q --verify "refs/heads/base/$sha" >/dev/null; then continue; fi
  if git --git-dir "$out" rev-parse -q --verify "$sha^{commit}" >/dev/null; then
    git --git-dir "$out" update-ref "refs/heads/base/$sha" "$sha"
    continue
  fi
  git --git-dir "$out" fetch -q --depth 1 \
    --upload-pack="git -c uploadpack.allowAnySHA1InWant=true upload-pack" \
    "file://$src" "+$sha:refs/heads/base/$sha" || { echo "eval-mirrors: $repo $sha: fetch failed" >&2; failed=$((failed + 1)); }
done < <(node -e '
  const rows = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse);
  for (const r of rows) console.log(r.repo, r.base_commit);
' "$bench")
echo "eval-mirrors: $(ls -d "$dest"/*+*.git | wc -l) repositories in $dest"
# The others are made; an eval would meet the missing ones as errors, later and without the cause.
if [ "$failed" -gt 0 ]; then echo "eval-mirrors: $failed base commits could not be fetched (see above)" >&2; exit 1; fi
