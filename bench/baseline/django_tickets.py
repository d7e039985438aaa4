"""Django's fixes asked again as the Trac tickets they closed: the proxy for the unseen sets'
largest repository, whose issues live on Trac rather than GitHub (real_issues.py cannot reach them).

django-tickets.tsv pairs a ticket with the commit whose message says "Fixed #N --". The base
commit is that commit's parent and the ground truth its edited source files and functions, read
as commits.py reads every mined fix. The problem statement is the ticket's summary and
description in the form SWE-bench gives Django's tickets (Trac's page as text: a "Description"
line, code blocks without the wiki's braces).

  python3 bench/baseline/django_tickets.py --git-dir DJANGO.git OUT.jsonl
  python3 bench/baseline/django_tickets.py --git-dir DJANGO.git --texts TEXTS.jsonl OUT.jsonl

Without --texts each ticket is read from code.djangoproject.com (?format=tab). The figures in
BENCHMARKS.md were made here without internet, from the text a search index stored of each ticket
(TEXTS: one {"ticket", "summary", "description"} per line, the first ~1,000-1,700 characters),
so a rebuild from the full tickets can differ a little.
"""
import argparse
import csv
import io
import json
import os
import re
import urllib.request

from commits import TEST_PATH, git, gold, is_source


def trac_ticket(number):
    with urllib.request.urlopen(f"https://code.djangoproject.com/ticket/{number}?format=tab", timeout=30) as r:
        rows = list(csv.DictReader(io.StringIO(r.read().decode("utf-8")), dialect="excel-tab"))
    return {"summary": rows[0]["summary"], "description": rows[0]["description"]}


def as_statement(summary, description):
    # Trac's rendered page, as SWE-bench holds it: code blocks keep their lines, lose their braces.
    text = re.sub(r"^\s*\{\{\{\s*(#!\w+)?\s*$|^\s*\}\}\}\s*$", "", description, flags=re.M)
    text = re.sub(r"\{\{\{(.*?)\}\}\}", r"\1", text)
    return f"{summary.strip()}\nDescription\n\t \n{text.strip()}"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--git-dir", required=True, help="a whole-history clone of django/django")
    p.add_argument("--pairs", default=os.path.join(os.path.dirname(__file__), "django-tickets.tsv"))
    p.add_argument("--texts", help="stored ticket texts instead of reading Trac")
    p.add_argument("out")
    a = p.parse_args()
    texts = {}
    if a.texts:
        for line in open(a.texts):
            d = json.loads(line)
            texts[int(d["ticket"])] = d
    n = 0
    with open(a.out, "w") as out:
        for line in open(a.pairs):
            if line.startswith("#") or not line.strip():
                continue
            ticket, sha = line.split("\t")[:2]
            ticket, sha = int(ticket), sha.strip()
            t = texts.get(ticket) if a.texts else trac_ticket(ticket)
            if t is None:
                continue
            parent = git(a.git_dir, "rev-parse", f"{sha}^").strip()
            changes = [l.split("\t") for l in git(a.git_dir, "diff", "--name-status", "--no-renames", parent, sha).splitlines()]
            files = [c[-1] for c in changes if is_source(c[-1]) and not TEST_PATH.search(c[-1])]
            gt = gold(a.git_dir, parent, sha, files)
            if gt is None or not gt["entities"]:
                continue
            out.write(json.dumps({
                "instance_id": f"django__django-{sha[:12]}",
                "repo": "django/django",
                "base_commit": parent,
                "problem_statement": as_statement(t["summary"], t["description"]),
                "gt": gt,
                "ticket": ticket,
            }) + "\n")
            n += 1
    print(f"{n} instances", flush=True)


if __name__ == "__main__":
    main()
