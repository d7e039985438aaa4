import { z } from "zod";
import type { ExecResult } from "../../sandbox/types.js";
import { PY_TEXT } from "./pyText.js";
import { MEMORY_CAP } from "../sandboxMemory.js";
import { SOURCE_OUTLINE } from "../sourceOutline.js";
import { counts, type Exec } from "./repoScan.js";

/**
 * The structural index of a few candidate files, built with Python's own ast inside the
 * sandbox (the host never parses the repository's code): every class, function and
 * method with its span, and how the query's words fall in its name, signature, docstring
 * and body, which of the identifiers it uses, and which names it calls. Files ast
 * cannot read (Python 2 syntax) are outlined from `def`/`class` lines and indentation; files
 * in other languages, from their declaration lines (sourceOutline.ts).
 */

export const OUTLINE_SCRIPT = `${PY_TEXT}
${SOURCE_OUTLINE}
import ast
${MEMORY_CAP}
root = sys.argv[1]
q = json.load(sys.stdin)
terms = Terms([stem(w) for w in q["words"]])
names = {n.encode(): n for n in q["names"]}
DEF_LINE = re.compile(r"^([ \\t]*)(?:async[ \\t]+)?(def|class)[ \\t]+(\\w+)[ \\t]*(\\([^)]*\\)?)?")
CALL = re.compile(r"([A-Za-z_]\\w*)[ \\t]*\\(")
FUNCS = (ast.FunctionDef, ast.AsyncFunctionDef)
MAX_BYTES = 2000000


def forms_of(src):
    """The file's own spelling of each query key, its most frequent (ties: first in order): the
    issue's "deleting" is "delete" here, and evidence that names the file's spelling is found by
    a plain search."""
    counts = Counter(WORD.findall(src))
    seen = {}
    for tok in sorted(t for t in counts if terms.of(t)):
        for part in SUB.findall(tok.decode("utf-8", "replace")):
            k = stem(part)
            if k in terms.keys and len(part) > 1:
                c = seen.setdefault(k, Counter())
                c[part.lower()] += counts[tok]
    return {k: max(sorted(c), key=lambda w: c[w])[:60] for k, c in seen.items()}


def tf_of(text):
    return terms.count(Counter(WORD.findall(text.encode("utf-8", "replace"))))


def record(kind, name, cls, start, end, args, doc, calls, decos, lines, first=None):
    body = "\\n".join(lines[start - 1:end])
    counts = Counter(WORD.findall(body.encode("utf-8", "replace")))
    # Names past 300 characters (generated code, deep nesting) are cut, not let fail the outline.
    return {
        "k": kind, "n": name[:300], "c": cls[:300] if cls else cls, "s": start, "e": end, "f": first or start,
        "tn": tf_of(name), "ta": tf_of(" ".join(args)), "td": tf_of(doc or ""), "tb": terms.count(counts),
        "ids": {names[n]: counts[n] for n in names if n in counts},
        "calls": [c[:300] for c in sorted(calls)[:80]], "dec": [d[:300] for d in sorted(decos)[:10]],
    }


def callees(node):
    out = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Call):
            f = n.func
            if isinstance(f, ast.Name):
                out.add(f.id)
            elif isinstance(f, ast.Attribute):
                out.add(f.attr)
    return out


def deco_names(node):
    out = set()
    for d in node.decorator_list:
        f = d.func if isinstance(d, ast.Call) else d
        if isinstance(f, ast.Name):
            out.add(f.id)
        elif isinstance(f, ast.Attribute):
            out.add(f.attr)
    return out


def first_line(node):
    return min([d.lineno for d in node.decorator_list] + [node.lineno])


def arg_names(a):
    return [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs] + [x.arg for x in (a.vararg, a.kwarg) if x]


def from_ast(tree, lines):
    defs = []

    def walk(body, cls):
        for n in body:
            if isinstance(n, ast.ClassDef):
                q = n.name if cls is None else cls + "." + n.name
                end = getattr(n, "end_lineno", n.lineno)
                defs.append(record("class", n.name, cls, n.lineno, end, [], ast.get_docstring(n), set(), deco_names(n), lines, first_line(n)))
                walk(n.body, q)
            elif isinstance(n, FUNCS):
                end = getattr(n, "end_lineno", n.lineno)
                defs.append(record("def", n.name, cls, n.lineno, end, arg_names(n.args), ast.get_docstring(n), callees(n), deco_names(n), lines, first_line(n)))
            elif isinstance(n, (ast.If, ast.Try)) and cls is None:
                # Definitions under "if sys.version_info ..." or "try: import" still count.
                walk(n.body + n.orelse + getattr(n, "finalbody", []) + [h for x in getattr(n, "handlers", []) for h in x.body], cls)

    walk(tree.body, None)
    return defs


CONFLICT_MARKER = re.compile(r"(<{7}|={7}|>{7}|\\|{7})( |\\s*$)")

def from_lines(lines):
    # Old syntax ast refuses: spans from indentation, classes from the enclosing def lines.
    # A definition ends at the first later line of code indented no deeper than it: one walk,
    # with the open definitions on a stack (their indentations strictly increase).
    found = []
    ends = {}
    open_defs = []
    for k, s in enumerate(lines):
        # A merge conflict's markers (column 0) are inside whatever definition they cut.
        if s.strip() and not s.lstrip().startswith(("#", "@", ")")) and not CONFLICT_MARKER.match(s):
            d = len(s) - len(s.lstrip())
            while open_defs and open_defs[-1][0] >= d:
                ends[open_defs.pop()[1]] = k
        m = DEF_LINE.match(s)
        if m:
            ind = len(m.group(1).expandtabs())
            found.append((k, ind, m.group(2), m.group(3), m.group(4) or ""))
            open_defs.append((ind, k))
    defs = []
    stack = []
    for i, ind, kind, name, sig in found:
        end = ends.get(i, len(lines))
        while stack and stack[-1][0] >= ind:
            stack.pop()
        parents = [s for s in stack if s[2] == "class"]
        inside_def = any(s[2] == "def" for s in stack)
        if not inside_def:
            cls = ".".join(s[1] for s in parents) or None
            calls = set(CALL.findall("\\n".join(lines[i + 1:end]))) if kind == "def" else set()
            args = re.findall(r"[A-Za-z_]\\w*", sig)
            defs.append(record(kind, name, cls, i + 1, end, args, None, calls, set(), lines))
        stack.append((ind, name, kind))
    return defs


out = []
for f in q["files"]:
    try:
        with open(os.path.join(root, f), "rb") as fh:
            src = fh.read(MAX_BYTES + 1)
    except OSError:
        out.append({"p": f, "ast": False, "defs": []})
        continue
    if len(src) > MAX_BYTES:
        out.append({"p": f, "ast": False, "defs": []})
        continue
    lines = src.decode("utf-8", "replace").split("\\n")
    lang = lang_of(f)
    if lang not in (None, "py"):
        defs = [record(d["kind"], d["name"], d["cls"], d["start"], d["end"], d["params"], d["doc"], d["calls"], set(d["decos"]), lines, d["first"]) for d in outline_source(lines, lang)]
        out.append({"p": f, "ast": False, "defs": defs[:3000], "w": forms_of(src)})
        continue
    try:
        defs, ok = from_ast(ast.parse(src), lines), True
    except Exception:
        defs, ok = from_lines(lines), False
    out.append({"p": f, "ast": ok, "defs": defs[:3000], "w": forms_of(src)})

# dumps, not dump: only a one-shot encode runs in C.
sys.stdout.write(json.dumps({"files": out}, separators=(",", ":"), sort_keys=True))
`;

const name = z.string().max(300);
const outlineSchema = z.object({
  files: z.array(
    z.object({
      p: z.string().max(4096),
      ast: z.boolean(),
      defs: z
        .array(
          z.object({
            k: z.enum(["def", "class"]),
            n: name,
            c: name.nullable(),
            s: z.number().int().positive(),
            e: z.number().int().positive(),
            f: z.number().int().positive(),
            tn: counts,
            ta: counts,
            td: counts,
            tb: counts,
            ids: counts,
            calls: z.array(name).max(80),
            dec: z.array(name).max(10),
          }),
        )
        .max(3000),
      /** Query key → the file's own spelling (absent in dumps made before stop 55). */
      w: z.record(z.string().max(300), z.string().max(60)).optional(),
    }),
  ),
});

export interface OutlinedDef {
  file: string;
  kind: "def" | "class";
  name: string;
  /** Enclosing class, dotted when nested; null at module level. */
  cls: string | null;
  start: number;
  end: number;
  /** Where its span starts, decorators included: what the check of an answer calls its start. Absent in dumps made before stop 35. */
  first?: number;
  /** Query key → occurrences in the name, signature, docstring and whole span. */
  nameTerms: Map<string, number>;
  argTerms: Map<string, number>;
  docTerms: Map<string, number>;
  bodyTerms: Map<string, number>;
  /** Issue identifiers used in the span. */
  ids: Map<string, number>;
  calls: string[];
  decorators: string[];
}

export interface OutlinedFile {
  path: string;
  /** False when the file was outlined from its def lines (ast could not read it). */
  ast: boolean;
  defs: OutlinedDef[];
  /** Query key → how the file spells it, for evidence a plain search finds. */
  forms?: Map<string, string>;
}

export class OutlineError extends Error {
  override name = "OutlineError";
}

export async function outlineFiles(exec: Exec, root: string, files: string[], query: { words: string[]; names: string[] }): Promise<OutlinedFile[]> {
  if (files.length === 0) return [];
  const result = await exec(["env", "PYTHONHASHSEED=0", "PYTHONSAFEPATH=1", "python3", "-c", OUTLINE_SCRIPT, root], {
    stdin: JSON.stringify({ files, words: query.words, names: query.names }),
    timeoutMs: 60_000,
    maxOutputBytes: 16 << 20,
  });
  return parseOutline(result, files);
}

export function parseOutline(result: ExecResult, files: string[]): OutlinedFile[] {
  if (result.exitCode !== 0 || result.truncated) throw new OutlineError(`outline failed (exit ${result.exitCode}${result.truncated ? ", output cut" : ""}): ${result.stderr.slice(-300)}`);
  let raw: unknown;
  try {
    raw = JSON.parse(result.stdout);
  } catch {
    throw new OutlineError("outline printed no JSON");
  }
  const parsed = outlineSchema.safeParse(raw);
  if (!parsed.success) throw new OutlineError(`outline output is malformed: ${parsed.error.issues[0]?.message ?? ""}`);
  const asked = new Set(files);
  return parsed.data.files
    .filter((f) => asked.has(f.p))
    .map((f) => ({
      path: f.p,
      ast: f.ast,
      ...(f.w ? { forms: new Map(Object.entries(f.w)) } : {}),
      defs: f.defs.map((d) => ({
        file: f.p,
        kind: d.k,
        name: d.n,
        cls: d.c,
        start: d.s,
        end: Math.max(d.s, d.e),
        first: Math.min(d.f, d.s),
        nameTerms: d.tn,
        argTerms: d.ta,
        docTerms: d.td,
        bodyTerms: d.tb,
        ids: d.ids,
        calls: d.calls,
        decorators: d.dec,
      })),
    }));
}
