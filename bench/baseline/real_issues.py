"""Mined fixes asked again as the issues they closed: the instance (base commit, ground truth)
comes from commits.py, the problem statement from the GitHub issue its pull request closed
(bench/baseline/real-issues.tsv pairs them). Commit messages say what was changed; issues say what
went wrong, which is what the service is asked, so these score the baseline as users will meet it.

  python3 bench/baseline/real_issues.py --set unseen OUT.jsonl MINED.jsonl...

Needs the GitHub API (set GITHUB_TOKEN for the rate limit), or --texts: the issues' texts as
a search index stores them, one {"url", "title", "body"} a line (bench/baseline/issue_text.py
makes a line from a search result). The figures in BENCHMARKS.md were made here without
internet, the latter way (the first ~1,500-2,000 characters of each issue), so a rebuild from
the full issues can differ a little.
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
    p.add_argument("--texts", help="the issues' texts, one {url, title, body} a line, instead of the GitHub API; an issue not in it is left out")
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
    texts = None
    if a.texts:
        texts = {}
        for line in open(a.texts):
            t = json.loads(line)
            texts[t["url"]] = f"{t['title']}\n{t['body']}"
    n = 0
    with open(a.out, "w") as out:
        for path in a.mined:
            for line in open(path):
                d = json.loads(line)
                if d["instance_id"] in pairs and (texts is None or pairs[d["instance_id"]] in texts):
                    d["issue_url"] = pairs[d["instance_id"]]
                    d["problem_statement"] = texts[d["issue_url"]] if texts is not None else issue(d["issue_url"])
                    out.write(json.dumps(d) + "\n")
                    n += 1
    print(f"{n} of {len(pairs)} instances", flush=True)


if __name__ == "__main__":
    main()
