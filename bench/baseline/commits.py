"""Localization instances mined from a repository's own history, for fitting the baseline's
weights on more repositories than the dev set holds.

A commit that edits a few source files and explains itself at length stands in for an issue
and its fix: the message is the problem statement, the parent is the base commit, and the
edited functions (old side of the diff, mapped onto the parent's definitions with `ast`) are
the ground truth in the dev set's convention. Commit messages describe fixes rather than
symptoms, so these instances are only ever used for fitting, never reported as accuracy.

  python3 bench/baseline/commits.py --per-repo 30 OUT.jsonl GIT_DIR:owner/name@COMMIT ...

The history is walked back from COMMIT (the newest first), so a pinned list of sources
(bench/baseline/mined-repos.txt) always yields the same instances.
"""
import argparse
import ast
import json
import re
import subprocess
import sys

TRAILER = re.compile(r"^(co-authored-by|signed-off-by|reviewed-by|acked-by|cc|fixes|closes|refs?)\b.*$", re.I | re.M)
SKIP_TITLE = re.compile(r"^\W*(bump|update|upgrade|release|prepare|merge|revert|pre-commit|\[pre-commit|docs?\b|typo|changelog|ci\b|test|tests\b|lint|format|style|refactor|version)", re.I)
TEST_PATH = re.compile(r"(^|/)(tests?|testing|docs?|examples?|benchmarks?|scripts?|tools?)/|(^|/)(test_[^/]*|[^/]*_tests?|conftest|setup|noxfile|conf)\.py$")
# Issues in the benchmarks report faults; keep commits that say they fix one.
BUGFIX = re.compile(r"\b(fix(es|ed)?|bug|crash(es)?|error|incorrect(ly)?|wrong|fail(s|ure)?|regression|broken|exception|raises?)\b", re.I)
HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+\d+(?:,\d+)? @@", re.M)


def git(gd, *args):
    return subprocess.run(["git", "--git-dir", gd, *args], check=True, capture_output=True, text=True, errors="replace").stdout


def definitions(source):
    """(start, end, module, entity) for top-level functions and methods; classes as modules."""
    out = []
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            out.append((node.lineno, node.end_lineno, node.name, node.name))
        elif isinstance(node, ast.ClassDef):
            out.append((node.lineno, node.end_lineno, node.name, None))
            for sub in node.body:
                if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    out.append((sub.lineno, sub.end_lineno, node.name, f"{node.name}.{sub.name}"))
    return out


# With --other-languages: the sandbox's reader of other languages' definitions (its Python text,
# printed from src/agent/sourceOutline.ts), so their gold is read as the baseline reads them.
READER = {}


def definitions_other(source, lang):
    out = []
    for d in READER["outline_source"](source.split("\n"), lang):
        # As definitions() has it: a method's module is its class, a function's itself.
        qual = f"{d['cls']}.{d['name']}" if d["cls"] else d["name"]
        out.append((d["start"], d["end"], d["cls"] or d["name"], qual if d["kind"] == "def" else None))
    return out


def edited(gd, parent, sha, path):
    source = git(gd, "show", f"{parent}:{path}")
    lang = READER["lang_of"](path) if READER and not path.endswith(".py") else None
    defs = definitions_other(source, lang) if lang else definitions(source)
    if defs is None:
        return None
    lines = set()
    for m in HUNK.finditer(git(gd, "diff", "-U0", parent, sha, "--", path)):
        start, count = int(m.group(1)), int(m.group(2) or 1)
        # A pure insertion after line `start` edits whatever encloses both neighbours.
        lines.update(range(start, start + count) if count else [start, start + 1] if start else [])
    modules, entities = set(), set()
    for line in lines:
        inner = [d for d in defs if d[0] <= line <= d[1]]
        ents = [d for d in inner if d[3]]
        if ents:
            best = max(ents, key=lambda d: d[0])
            modules.add(f"{path}:{best[2]}")
            entities.add(f"{path}:{best[3]}")
        elif inner:
            modules.add(f"{path}:{inner[0][2]}")
    return modules, entities


HEX_WORD = re.compile(r"(?<![0-9A-Za-z_])[0-9a-f]{7,40}(?![0-9A-Za-z_])")


def names_ancestor(gd, msg, sha):
    """Whether the message names a commit before this one (what --names-commit keeps)."""
    for word in set(HEX_WORD.findall(msg)):
        if not (re.search("[a-f]", word) and re.search("[0-9]", word)):
            continue
        ok = subprocess.run(["git", "--git-dir", gd, "merge-base", "--is-ancestor", word, sha], capture_output=True)
        if ok.returncode == 0:
            return True
    return False


def is_source(path):
    if not READER:
        return path.endswith(".py")
    # The reader's own test rule: the files the baseline leaves out are never gold.
    return READER["lang_of"](path) not in (None, "py") and not READER["OTHER_TESTISH"].search(path)


def gold(gd, parent, sha, files):
    """The ground truth of a fix that changed these files, or None where one cannot be read."""
    modules, entities = set(), set()
    for path in files:
        got = edited(gd, parent, sha, path)
        if got is None:
            return None
        modules |= got[0]
        entities |= got[1]
    return {"files": sorted(files), "modules": sorted(modules), "entities": sorted(entities)}


def mine(gd, repo, tip, per_repo, names_commit=False):
    log = git(gd, "log", "--no-merges", "--format=%H%x00%P%x00%B%x01", tip)
    found = []
    for rec in log.split("\x01"):
        if "\x00" not in rec:
            continue
        sha, parents, msg = rec.strip("\n").split("\x00", 2)
        if len(parents.split()) != 1:
            continue
        msg = TRAILER.sub("", msg).strip()
        title, _, body = msg.partition("\n")
        # A message naming the commit that broke things says much in few words.
        if len(body.strip()) < (80 if names_commit else 200) or len(msg) > 6000 or SKIP_TITLE.search(title) or not BUGFIX.search(title):
            continue
        # Squashed pull requests list their commits ("* Update x.py"): no description left.
        if len(re.findall(r"^\s*[*-] ", body, re.M)) > 3:
            continue
        if names_commit and not names_ancestor(gd, msg, sha):
            continue
        changes = [l.split("\t") for l in git(gd, "diff", "--name-status", "--no-renames", parents, sha).splitlines()]
        py = [c for c in changes if is_source(c[-1]) and not TEST_PATH.search(c[-1])]
        if not 1 <= len(py) <= 3 or any(c[0] != "M" for c in py):
            continue
        files = [path for _, path in py]
        gt = gold(gd, parents, sha, files)
        if gt is not None and 1 <= len(gt["entities"]) <= 6:
            owner, name = repo.split("/")
            found.append({
                "instance_id": f"{owner}__{name}-{sha[:12]}",
                "repo": repo,
                "base_commit": parents,
                "problem_statement": msg,
                "gt": gt,
            })
        if len(found) >= per_repo:
            break
    return found


def relabel(src, out, gds):
    """The instances of src with their gold read again (same commits, same texts): after a
    change to the reader, so the gold is what the reader now sees."""
    with open(src) as f, open(out, "w") as w:
        for line in f:
            r = json.loads(line)
            gd = gds[r["repo"]]
            sha = git(gd, "rev-parse", r["instance_id"].rsplit("-", 1)[1]).strip()
            r["gt"] = gold(gd, r["base_commit"], sha, r["gt"]["files"])
            w.write(json.dumps(r) + "\n")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--per-repo", type=int, default=30)
    # Only messages naming an earlier commit ("Regression in b3db6c8"): fitting instances for
    # the baseline's named-commit features, which the newest commits alone seldom exercise.
    p.add_argument("--names-commit", action="store_true")
    # Fixes in other languages' files instead of Python's (FILE: the reader's Python text).
    p.add_argument("--other-languages", metavar="FILE")
    # Instead of mining: IN's instances with their gold read again by the reader.
    p.add_argument("--relabel", metavar="IN")
    p.add_argument("out")
    p.add_argument("sources", nargs="+", help="GIT_DIR:owner/name@COMMIT")
    a = p.parse_args()
    if a.other_languages:
        with open(a.other_languages) as f:
            exec(f.read(), READER)
    if a.relabel:
        relabel(a.relabel, a.out, {s.rsplit(":", 1)[1].partition("@")[0]: s.rsplit(":", 1)[0] for s in a.sources})
        return
    with open(a.out, "w") as f:
        for src in a.sources:
            gd, spec = src.rsplit(":", 1)
            repo, _, tip = spec.partition("@")
            rows = mine(gd, repo, tip or "HEAD", a.per_repo, a.names_commit)
            print(f"{repo}: {len(rows)} instances", file=sys.stderr)
            for r in rows:
                f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
