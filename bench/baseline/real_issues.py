"""Mined fixes asked again as the issues they closed: the instance (base commit, ground truth)
comes from commits.py, the problem statement from the GitHub issue its pull request closed
(bench/baseline/real-issues.tsv pairs them). Commit messages say what was changed; issues say what
went wrong, which is what the service is asked, so these score the baseline as users will meet it.

  python3 bench/baseline/real_issues.py --set unseen OUT.jsonl MINED.jsonl...

Needs the GitHub API (set GITHUB_TOKEN for the rate limit). The figures in BENCHMARKS.md were
made here without internet, from the first ~1,500-2,000 characters of each issue as a search
index stores them, so a rebuild from the full issues can differ a little.
"""
import argparse
import json
import os
import re
import urllib.request


def issue(url):
    owner, name, number = re.match(r"https://github\.com/([^/]+)/([^/]+)/issues/(\d+)$", url).groups()
    req = urllib.request.Request(f"https://api.github.com/repos/{owner}/{name}/issues/{number}", headers={"Accept": "application/vnd.github+json"})
    if os.environ.get("GITHUB_TOKEN"):
        req.add_header("Authorization", f"Bearer {os.environ['GITHUB_TOKEN']}")
    with urllib.request.urlopen(req, timeout=30) as r:
        d = json.load(r)
    return f"{d['title']}\n{d.get('body') or ''}"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--set", required=True, choices=["unseen", "large", "mined", "other"])
    p.add_argument("--pairs", default=os.path.join(os.path.dirname(__file__), "real-issues.tsv"))
    p.add_argument("out")
    p.add_argument("mined", nargs="+", help="instances from commits.py")
    a = p.parse_args()
    pairs = {}
    for line in open(a.pairs):
        if line.startswith("#") or not line.strip():
            continue
        s, iid, url = line.rstrip("\n").split("\t")
        if s == a.set:
            pairs[iid] = url
    n = 0
    with open(a.out, "w") as out:
        for path in a.mined:
            for line in open(path):
                d = json.loads(line)
                if d["instance_id"] in pairs:
                    d["issue_url"] = pairs[d["instance_id"]]
                    d["problem_statement"] = issue(d["issue_url"])
                    out.write(json.dumps(d) + "\n")
                    n += 1
    print(f"{n} of {len(pairs)} instances", flush=True)


if __name__ == "__main__":
    main()
