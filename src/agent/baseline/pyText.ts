/**
 * Python shared by the scripts the baseline runs inside the sandbox: how source text is cut
 * into terms. Words are stemmed here only, so the words and the repository's
 * tokens always meet under the same stemmer.
 */
export const PY_TEXT = String.raw`
import json, os, re, sys
from collections import Counter

SUB = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
WORD = re.compile(rb"\w+")


def stem(w):
    # Light and symmetric: "routes"/"route", "classes"/"class", "encoding"/"encode",
    # "formatted"/"format" meet; meaning-changing suffixes are left alone.
    w = w.lower()
    if len(w) > 4 and w.endswith("ies"):
        w = w[:-3] + "y"
    elif len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
        w = w[:-1]
    for suf in ("ing", "ed"):
        if w.endswith(suf) and len(w) - len(suf) >= 3:
            w = w[: -len(suf)]
            if len(w) > 3 and w[-1] == w[-2] and w[-1] not in "lsz":
                w = w[:-1]
            break
    if len(w) > 3 and w.endswith("e"):
        w = w[:-1]
    return w


def stems_of(token):
    """snake_case, CamelCase and HTTPAdapter split into stemmed parts."""
    return {stem(s) for s in SUB.findall(token) if len(s) > 1}


class Terms:
    """Maps repository tokens (bytes) to the query keys they hold, caching per token."""

    def __init__(self, keys):
        self.keys = set(keys)
        # A token can only stem to a key if it holds the key less its last letter (stemming
        # changes word endings only): the cheap test keeps the stemmer off most tokens.
        alts = sorted({k[:-1] if len(k) > 3 else k for k in self.keys})
        self.pre = re.compile("|".join(re.escape(a) for a in alts) if alts else "(?!)")
        self.cache = {}
        self.hits = {}

    def of(self, tok):
        hit = self.cache.get(tok)
        if hit is None:
            s = tok.decode("utf-8", "replace")
            hit = tuple(sorted(k for k in stems_of(s) if k in self.keys)) if self.pre.search(s.lower()) else ()
            self.cache[tok] = hit
            if hit:
                self.hits[tok] = hit
        return hit

    def count(self, counts):
        """Term frequencies of the keys in a Counter of tokens. Set operations stay in C and
        cost the smaller side: a set's intersection with a dict walks the whole dict (the
        cache's hits), so six outlined files of tiny definitions took minutes, each definition
        paying for every token seen before; a dict view's walks the smaller."""
        toks = set(counts)
        for tok in toks.difference(self.cache):
            self.of(tok)
        tf = {}
        for tok in self.hits.keys() & toks:
            for k in self.hits[tok]:
                tf[k] = tf.get(k, 0) + counts[tok]
        return tf
`;
