"""Mined instances dressed as their repository's GitHub issues: the commit message's body typed
under the template's description heading, the template's hidden instructions (HTML comments) and
other headings left in, as reporters leave them. A check of how the baseline reads templates,
never a set for choosing weights.

  python3 bench/baseline/templates.py OUT.jsonl IN.jsonl... \
      --template 'owner/name=GIT_DIR:REV:PATH:HEADING' ...

HEADING is the template line the description goes under (e.g. '### Description').
"""
import argparse
import json
import re
import subprocess


def template(spec):
    repo, _, rest = spec.partition("=")
    gd, rev, path, heading = rest.split(":", 3)
    text = subprocess.run(["git", "--git-dir", gd, "show", f"{rev}:{path}"], check=True, capture_output=True, text=True).stdout
    # The front matter (name, about, labels) is GitHub's, not shown in the issue.
    text = re.sub(r"\A---\n.*?\n---\n", "", text, flags=re.S)
    at = text.index(heading + "\n") + len(heading) + 1
    return repo, (text[:at], text[at:])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("inputs", nargs="+")
    p.add_argument("--template", action="append", required=True)
    a = p.parse_args()
    templates = dict(template(s) for s in a.template)
    n = 0
    with open(a.out, "w") as out:
        for path in a.inputs:
            for line in open(path):
                d = json.loads(line)
                if d["repo"] not in templates:
                    continue
                before, after = templates[d["repo"]]
                title, _, body = d["problem_statement"].partition("\n")
                d["problem_statement"] = f"{title}\n\n{before}{body.strip()}\n{after}"
                out.write(json.dumps(d) + "\n")
                n += 1
    print(f"{n} instances dressed", flush=True)


if __name__ == "__main__":
    main()
