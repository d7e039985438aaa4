"""One GitHub issue's text as the search index stores it, made a line of real_issues.py's --texts.

  python3 bench/baseline/issue_text.py TEXTS.jsonl < result.json

stdin: one search result, {"url": "https://github.com/o/n/issues/N", "excerpt": "..."}. The excerpt
holds the issue's title (`# Title`), then its description under a `<user> · description · <date>`
line, then comments; the title and the description are kept, the comments are not (the issue as
first reported, which is what the service is asked). An issue already in TEXTS is not added again.
"""
import json
import re
import sys


def parse(excerpt):
    lines = excerpt.split("\n")
    title = next((l[2:] for l in lines if l.startswith("# ")), None)
    start = next((i + 1 for i, l in enumerate(lines) if re.match(r"^\S+ · description · \d{4}-\d\d-\d\d\s*$", l)), None)
    body = []
    for l in lines[start:] if start is not None else []:
        if re.match(r"^\S+ · (comment|review|review thread|event)\b.* · \d{4}-\d\d-\d\d\s*$", l):
            break
        body.append(l)
    return title, "\n".join(body).strip("\n"), start is not None


def main():
    out = sys.argv[1]
    d = json.loads(sys.stdin.read())
    title, body, found = parse(d["excerpt"])
    if title is None:
        sys.exit(f"{d['url']}: no title in the excerpt")
    try:
        seen = {json.loads(l)["url"] for l in open(out)}
    except FileNotFoundError:
        seen = set()
    if d["url"] in seen:
        print("already there:", d["url"])
        return
    with open(out, "a") as f:
        f.write(json.dumps({"url": d["url"], "title": title, "body": body}, ensure_ascii=False) + "\n")
    print("added", d["url"], "|", title, "| body", len(body), "characters" if found else "(no description line: title only)")


if __name__ == "__main__":
    main()
