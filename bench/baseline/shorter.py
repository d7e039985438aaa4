"""The same instances asked more briefly, as an agent might ask instead of passing the issue on:
its title alone, or its title and the body's first paragraph (at most 300 characters). For
measuring how much of the answer the rest of the issue's text carries; never for fitting.

  python3 bench/baseline/shorter.py --keep title BENCH.jsonl... > OUT.jsonl
  python3 bench/baseline/shorter.py --keep paragraph BENCH.jsonl... > OUT.jsonl
"""
import argparse
import json
import re
import sys


def shorter(text, keep):
    text = text.strip()
    title, _, body = text.partition("\n")
    if keep == "title":
        return title.strip()
    # Trac's tickets (Django's, as SWE-bench gives them) open their body with a "Description" line.
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", body) if p.strip() and p.strip() != "Description"]
    return title.strip() + (f"\n\n{paragraphs[0][:300]}" if paragraphs else "")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--keep", choices=["title", "paragraph"], required=True)
    ap.add_argument("bench", nargs="+")
    a = ap.parse_args()
    for path in a.bench:
        with open(path) as f:
            for line in f:
                inst = json.loads(line)
                inst["problem_statement"] = shorter(inst["problem_statement"], a.keep)
                sys.stdout.write(json.dumps(inst) + "\n")


if __name__ == "__main__":
    main()
