import { z } from "zod";
import type { ExecOptions, ExecResult } from "../../sandbox/types.js";
import { PY_TEXT } from "./pyText.js";
import { SOURCE_OUTLINE } from "../sourceOutline.js";

/**
 * One pass over every source file of the tree in its own language (Python, or those of
 * sourceOutline.ts), inside the sandbox: per file, how
 * often the issue's words occur in its text and in its path, how
 * often the issue's identifiers occur, where they are defined, and where the issue's quoted
 * phrases appear. Tests, docs and examples are left out: an issue is fixed in the library.
 */

export type Exec = (argv: string[], options?: ExecOptions) => Promise<ExecResult>;

export interface ScanQuery {
  /** Words and identifier parts; the script stems them (its `keys`, index for index). */
  words: string[];
  /** Exact identifiers to count and find definitions of. */
  names: string[];
  /** Fixed strings to find (error messages, code lines, option names). */
  phrases: string[];
  /** Paths of files that are not source, as the issue writes them: which of them the tree holds. */
  files?: string[];
}

/** Source files the scan reads at most, and lists at most (240,000 listed: 2.4 s, 60 MB) to choose them from. */
const SCAN_MAX_FILES = 20_000;
const SCAN_MAX_LISTED = 200_000;

/** Directories the scan never enters (docs, builds, tests, vendored installs), and those it skips at the top only. */
export const SCAN_SKIP_DIRS: readonly string[] = ["tests", "doc", "docs", "examples", "benchmarks", "asv_bench", "build", "dist", "node_modules", "__pycache__", "site-packages", "__tests__", "__mocks__", "testdata"];
export const SCAN_TOP_SKIP_DIRS: readonly string[] = ["test", "testing"];

export const SCAN_SCRIPT = `${PY_TEXT}
${SOURCE_OUTLINE}
root = sys.argv[1]
q = json.load(sys.stdin)
SKIP_DIRS = set(${JSON.stringify(SCAN_SKIP_DIRS)})
TOP_SKIP = set(${JSON.stringify(SCAN_TOP_SKIP_DIRS)})
TESTISH = re.compile(r"^(test_.*|.*_test|conftest)\\.py$")
MAX_FILES, MAX_BYTES, LANG_CAP = ${SCAN_MAX_FILES}, 2000000, 65536
# Source files listed at most (SCAN_MAX_LISTED), of which the scan reads MAX_FILES.
MAX_LISTED = ${SCAN_MAX_LISTED}
# Bytes that are not ASCII word characters, mapped to spaces: translate + split gives the
# tokens a bytes \\w+ regex finds, at a fraction of its cost.
NONWORD = bytes(c if (48 <= c <= 57 or 65 <= c <= 90 or 97 <= c <= 122 or c == 95) else 32 for c in range(256))

keys = [stem(w) for w in q["words"]]
terms = Terms(keys)
names = {n.encode(): n for n in q["names"]}
phrases = [p.encode() for p in q["phrases"]]
# Definitions of the names the issue uses only: the regex engine passes every other def in C.
# Each pattern begins with a literal, which the engine jumps to; a leading \`^\` (multiline) or
# lookbehind is tried at every byte instead (sympy's tree: 0.46 s against 0.03 s for the defs,
# 0.7 against 0.2 for the names). What the literal cannot say, that the keyword begins its line
# and the name begins a word, is checked on the few matches.
NAMES = b"|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
DEFS = [(kw, re.compile(kw.encode() + rb"[ \\t]+(" + NAMES + rb")(?!\\w)")) for kw in ("def", "class")] if names else []
NAMED = re.compile(rb"(" + NAMES + rb")(?![\\w$])") if names else None
# Lines of another language's source that hold no declaration: a comment's, a conditional's branch
# (but a generator method "*entries() {", C's "*xstrdup(", C++'s "::std::string Foo::name()" are).
NOT_DECLARATION = re.compile(r"\\s*(?:\\*(?:\\s|/|$)|//|/\\*|\\?|:(?!:))")
NAME_BYTES = frozenset(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_$")


def begins_line(text, at):
    """Whether only indentation, and \`async\` after it, stand before \`at\` on its line. Read
    backwards over those bytes alone: a long line (generated code) is never read again per match."""
    i = at
    while i and text[i - 1] in b" \\t":
        i -= 1
    if i < at and text.endswith(b"async", 0, i):
        i -= 5
        while i and text[i - 1] in b" \\t":
            i -= 1
    return i == 0 or text[i - 1] == 10


def py_defs(text, limit):
    """(offset, keyword, name) of the first \`limit\` defs and classes of the issue's names."""
    out = []
    for kw, rx in DEFS:
        found = 0
        for m in rx.finditer(text):
            if begins_line(text, m.start()):
                out.append((m.start(), kw, m.group(1)))
                found += 1
                if found == limit:
                    break
    return sorted(out)[:limit]


def named(text):
    """The issue's names where they stand as whole words (a name's bytes are all NAME_BYTES,
    so a match refused for the byte before it never hides one that would not be)."""
    for m in NAMED.finditer(text):
        if not (m.start() and text[m.start() - 1] in NAME_BYTES):
            yield m

def walk(root):
    """os.walk's top-down order (directories sorted, symlinked ones not entered), with a stack
    of its own: 3.11's os.walk recurses, and a tree a thousand directories deep ended the scan.
    Only regular files (a link's target too): a committed link to /proc/self/fd/1 would block
    its reader for ever."""
    stack = [("", root)]
    while stack:
        rel, d = stack.pop()
        dirs, files = [], []
        try:
            entries = list(os.scandir(d))
        except OSError:
            continue
        for e in entries:
            try:
                if e.is_dir():
                    if not e.is_symlink():
                        dirs.append(e.name)
                elif e.is_file():
                    files.append((e.name, e.stat().st_size))
            except OSError:
                continue
        yield rel, dirs, files
        for x in sorted(dirs, reverse=True):
            stack.append((rel + "/" + x if rel else x, os.path.join(d, x)))


found = []
for rel, dirs, files in walk(root):
    top = rel == ""
    dirs[:] = [x for x in dirs if not x.startswith(".") and x not in SKIP_DIRS and not x.endswith(".egg-info") and not (top and x in TOP_SKIP)]
    for f, size in sorted(files):
        lang = lang_of(f)
        path = f if top else rel + "/" + f
        if lang == "py":
            if TESTISH.match(f) or (top and f == "setup.py"):
                continue
        elif lang is None or OTHER_TESTISH.search(path):
            continue
        found.append((path, lang, size))
    if len(found) >= MAX_LISTED:
        break
# A tree with more source files than the scan reads (a monorepo): those whose paths hold an
# issue term first (the package the issue is about), then the others in walk order. Cut in walk
# order alone, everything past the first directories' files went unread.
if len(found) > MAX_FILES:
    part_terms = {}

    def on_topic(path):
        for part in os.path.splitext(path)[0].split("/"):
            if part not in part_terms:
                part_terms[part] = bool(terms.of(part.encode("utf-8", "surrogateescape")))
            if part_terms[part]:
                return True
        return False

    found = sorted(found, key=lambda f: not on_topic(f[0]))
# The tree's own languages, by size, each file counted up to LANG_CAP bytes. Python alone when
# it is a quarter of the source or more: Python packages carry generated C, vendored C libraries
# and JavaScript assets (matplotlib's agg, scikit-learn's Cython output, sphinx's translations),
# large files the cap keeps from outweighing the package's own Python, and the issues are about
# the Python. Otherwise the largest language and any other at least half as large, so a
# TypeScript project's build scripts, or a C++ library's helper scripts, in Python stay out
# (counted by files, fmt's eight small scripts outnumbered half its sixteen large headers).
per_lang = Counter()
for _, lang, size in found[:MAX_FILES]:
    per_lang[lang] += min(size, LANG_CAP) + 1
top_size = max(per_lang.values(), default=0)
langs = {"py"} if 4 * per_lang["py"] >= sum(per_lang.values()) > 0 else {lang for lang, c in per_lang.items() if 2 * c >= top_size}
kept = [(p, lang) for p, lang, _ in found[:MAX_FILES] if lang in langs]
paths = [p for p, _ in kept]

out = []
for i, (p, lang) in enumerate(kept):
    try:
        with open(os.path.join(root, p), "rb") as fh:
            text = fh.read(MAX_BYTES + 1)
    except OSError:
        continue
    if len(text) > MAX_BYTES:
        continue
    counts = Counter(text.translate(NONWORD).split())
    tf = terms.count(counts)
    defs = []
    if lang == "py":
        for at, kw, name in py_defs(text, 50):
            defs.append([names[name], kw, text.count(b"\\n", 0, at) + 1])
    elif NAMED:
        # Other languages: only lines that hold a name the issue uses are read as declarations.
        seen = set()
        for k, m in enumerate(named(text)):
            if len(defs) >= 50 or k >= 2000:
                break
            start = text.rfind(b"\\n", 0, m.start()) + 1
            if start in seen:
                continue
            seen.add(start)
            end = text.find(b"\\n", m.end())
            line = text[start:end if end >= 0 else len(text)].decode("utf-8", "replace")
            # Read raw, not through the outline's comment stripping: a comment's example
            # ("*   public T read(JsonReader in)") or a conditional's branch ("? render(") is no
            # definition, and the evidence would name its line as one.
            if NOT_DECLARATION.match(line):
                continue
            d = declaration(line, lang)
            # An anonymous class's head names its type, not a definition; a Java head with no
            # type (a constructor, an enum constant's body) counts as a function here.
            if d and d[0] != "anon" and d[1] == names[m.group(1)]:
                defs.append([d[1], "def" if d[0] == "bare" else d[0], text.count(b"\\n", 0, start) + 1])
    ids = {names[n]: counts[n] for n in names if n in counts}
    pt = {}
    for part in os.path.splitext(p)[0].split("/"):
        # A name git stores that is not UTF-8 arrives with surrogates standing for its bytes.
        for k in terms.of(part.encode("utf-8", "surrogateescape")):
            pt[k] = pt.get(k, 0) + 1
    ph = []
    for j, phrase in enumerate(phrases):
        at = text.find(phrase)
        for _ in range(3):
            if at < 0 or len(ph) >= 30:
                break
            ph.append([j, text.count(b"\\n", 0, at) + 1])
            at = text.find(phrase, at + 1)
    if tf or ids or pt or ph:
        out.append({"i": i, "n": text.count(b"\\n") + 1, "tf": tf, "pt": pt, "ids": ids, "defs": defs, "ph": ph})

# Files that are not source the issue names (namedFiles.ts), which the tree holds and the scan
# did not read. A path written with leading directories of the reporter's own (a checkout's, an
# install's) is tried without them, one at a time, down to its last directory; a bare name is
# asked at the top only. Never through a link: the answer names what the tree itself holds.
scanned = set(paths)
real_root = os.path.realpath(root) + os.sep
named = []
for p in q.get("files", [])[:20]:
    parts = p.split("/")
    for k in range(max(len(parts) - 1, 1)):
        cand = "/".join(parts[k:])
        full = os.path.join(root, cand)
        if cand in scanned or not os.path.isfile(full) or os.path.realpath(full) != os.path.join(real_root, cand):
            continue
        if cand not in named:
            named.append(cand)
        break

# dumps, not dump: only a one-shot encode runs in C (a tenth of a second on a large tree).
# Of the languages read, how many files the tree holds (past MAX_LISTED, more than that).
listed = sum(1 for _, lang, _ in found if lang in langs)
sys.stdout.write(json.dumps({"keys": keys, "paths": paths, "files": out, "named": named, "listed": listed, "cut": len(found) >= MAX_LISTED}, separators=(",", ":"), sort_keys=True))
`;

/**
 * A count per name, read into a Map. Not z.record: it builds a plain object and leaves a
 * "__proto__" key out, and that is a name an issue about prototype pollution asks about.
 */
export const counts = z
  .custom<Record<string, unknown>>((v) => typeof v === "object" && v !== null && !Array.isArray(v), "expected an object of counts")
  .transform((record, ctx) => {
    const out = new Map<string, number>();
    for (const [key, n] of Object.entries(record)) {
      if (key.length > 200 || typeof n !== "number" || !Number.isInteger(n) || n < 0) {
        ctx.addIssue({ code: "custom", message: `not a name and its count: ${JSON.stringify(key.slice(0, 50))}` });
        return z.NEVER;
      }
      out.set(key, n);
    }
    return out;
  });
const scanSchema = z.object({
  keys: z.array(z.string().max(200)),
  paths: z.array(z.string().max(4096)).max(20_000),
  files: z
    .array(
      z.object({
        i: z.number().int().nonnegative(),
        n: z.number().int().nonnegative(),
        tf: counts,
        pt: counts,
        ids: counts,
        defs: z.array(z.tuple([z.string().max(200), z.enum(["def", "class"]), z.number().int().positive()])).max(50),
        ph: z.array(z.tuple([z.number().int().nonnegative(), z.number().int().positive()])).max(30),
      }),
    )
    .max(20_000),
  // Optional: a scan of an earlier build prints none (the dumps the offline replays read).
  named: z.array(z.string().max(4096)).max(20).optional(),
  listed: z.number().int().nonnegative().optional(),
  cut: z.boolean().optional(),
});

export interface ScannedFile {
  path: string;
  lines: number;
  /** Query key → occurrences in the file's text, and in its path. */
  tf: Map<string, number>;
  pathTerms: Map<string, number>;
  /** Exact identifier → occurrences. */
  ids: Map<string, number>;
  defs: Array<{ name: string; kind: "def" | "class"; line: number }>;
  /** Phrase index → lines (at most 3 per phrase). */
  phrases: Array<{ phrase: number; line: number }>;
}

export interface ScanResult {
  /** The stemmed key of each query word, index for index. */
  keys: string[];
  /** Every source file scanned (tests, docs excluded). */
  paths: string[];
  /** Files with any signal. */
  files: ScannedFile[];
  /** Files that are not source the issue names and the tree holds (namedFiles.ts). */
  named: string[];
  /** Files the tree holds in the languages read (of the first SCAN_MAX_LISTED source files: `cut` when there were more): past `paths`, not all were read. */
  listed: number;
  cut: boolean;
}

export class ScanError extends Error {
  override name = "ScanError";
}

const SCAN_TIMEOUT_MS = 60_000;

export async function scanRepository(exec: Exec, root: string, query: ScanQuery): Promise<ScanResult> {
  // PYTHONSAFEPATH: the tree is the working directory, and a json.py of its own would be imported in place of the standard one.
  const result = await exec(["env", "PYTHONHASHSEED=0", "PYTHONSAFEPATH=1", "python3", "-c", SCAN_SCRIPT, root], {
    stdin: JSON.stringify(query),
    timeoutMs: SCAN_TIMEOUT_MS,
    maxOutputBytes: 16 << 20,
  });
  return parseScan(result, query.phrases.length);
}

/** The scan's output, checked: `phrases` is how many phrases were asked about (a line for another is dropped). */
export function parseScan(result: ExecResult, phrases = Infinity): ScanResult {
  // Killed: its time limit, or the sandbox's memory limit (both read as a timed-out exec, exit 137).
  if (result.timedOut) throw new ScanError(`repository scan was stopped (past its ${SCAN_TIMEOUT_MS / 1000} s, or past the sandbox's memory: a tree too large for it, or a sandbox that stopped answering): ask with options.scope, a directory of the repository`);
  if (result.exitCode !== 0 || result.truncated) throw new ScanError(`repository scan failed (exit ${result.exitCode}${result.truncated ? ", output cut" : ""}): ${result.stderr.slice(-300)}`);
  let raw: unknown;
  try {
    raw = JSON.parse(result.stdout);
  } catch {
    throw new ScanError("repository scan printed no JSON");
  }
  const parsed = scanSchema.safeParse(raw);
  if (!parsed.success) throw new ScanError(`repository scan output is malformed: ${parsed.error.issues[0]?.message ?? ""}`);
  const { keys, paths, files, named = [], listed = paths.length, cut = false } = parsed.data;
  // What the script printed is the tree's to shape (a module of its own imported in place of the
  // standard one, say): a path that leaves the tree is refused, not read and answered.
  const outside = [...paths, ...named].find((p) => p.startsWith("/") || p.split("/").includes(".."));
  if (outside !== undefined) throw new ScanError(`repository scan printed a path outside the tree: ${JSON.stringify(outside.slice(0, 200))}`);
  // A file printed twice would count twice in how many files hold a term (and a term in every
  // file would weigh less than nothing).
  const seen = new Set<number>();
  return {
    keys,
    paths,
    files: files
      .filter((f) => f.i < paths.length && !seen.has(f.i) && seen.add(f.i))
      .map((f) => ({
        path: paths[f.i]!,
        lines: f.n,
        tf: f.tf,
        pathTerms: f.pt,
        ids: f.ids,
        defs: f.defs.map(([name, kind, line]) => ({ name, kind, line })),
        phrases: f.ph.filter(([phrase]) => phrase < phrases).map(([phrase, line]) => ({ phrase, line })),
      })),
    named,
    listed,
    cut,
  };
}

