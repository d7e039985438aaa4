import type { Confidence, Location } from "./policy.js";
import type { ExecOptions, ExecResult } from "../sandbox/types.js";
import { SOURCE_OUTLINE } from "./sourceOutline.js";
import { MEMORY_CAP } from "./sandboxMemory.js";

/**
 * What a policy answers is untrusted: paths are normalized, duplicates dropped, and every
 * location is checked against the tree at the commit (file exists; class and function
 * exist, found by Python's own ast inside the sandbox, or for other languages read from their
 * declaration lines; a span the policy gives is taken only where the file's lines confirm it).
 * Invalid entries are kept, marked.
 */

export interface CheckedLocation extends Location {
  valid: boolean;
  problem?: string;
  start_line?: number;
  end_line?: number;
  snippet?: string;
  snippet_truncated?: boolean;
}

const MAX_LOCATIONS = 200;
const MAX_NAME = 500;
const MAX_EVIDENCE = 5;
const MAX_EVIDENCE_CHARS = 200;

export function normalizeLocations(locations: Location[], workingDir: string): Location[] {
  const seen = new Set<string>();
  const out: Location[] = [];
  for (const raw of locations.slice(0, MAX_LOCATIONS)) {
    let file = raw.file.trim().slice(0, 4096).replace(/\\/g, "/");
    const wd = workingDir.replace(/\/+$/, "");
    if (file === wd || file.startsWith(`${wd}/`)) file = file.slice(wd.length);
    file = file.replace(/\/{2,}/g, "/").replace(/^(\.\/|\/)+/, "");
    let className = raw.class_name?.trim().slice(0, MAX_NAME) || undefined;
    let functionName = raw.function_name?.trim().slice(0, MAX_NAME) || undefined;
    // "Class.method" given as the function with no class: the same location, spelled out.
    if (!className && functionName?.includes(".")) {
      const cut = functionName.lastIndexOf(".");
      className = functionName.slice(0, cut);
      functionName = functionName.slice(cut + 1);
    }
    // The class written twice ("Foo" and "Foo.bar"): the method, not a Foo.Foo.bar nothing defines.
    if (className && functionName?.startsWith(`${className}.`)) functionName = functionName.slice(className.length + 1) || undefined;
    const evidence = normalizeEvidence(raw.evidence);
    const confidence = normalizeConfidence(raw.confidence, !!functionName);
    const named = !!(className || functionName);
    const loc: Location = {
      file,
      ...(className ? { class_name: className } : {}),
      ...(functionName ? { function_name: functionName } : {}),
      ...(evidence.length ? { evidence } : {}),
      ...(confidence ? { confidence } : {}),
      ...(named && isLine(raw.start_line) && isLine(raw.end_line) && raw.end_line >= raw.start_line ? { start_line: raw.start_line, end_line: raw.end_line } : {}),
    };
    const key = `${loc.file}\u0000${loc.class_name ?? ""}\u0000${loc.function_name ?? ""}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(loc);
  }
  return out;
}

/** A few short strings, whatever the policy sent (evidence is shown, never trusted). */
function normalizeEvidence(raw: unknown): string[] {
  if (!Array.isArray(raw)) return [];
  const out: string[] = [];
  for (const item of raw.slice(0, 50)) {
    if (typeof item !== "string") continue;
    const s = [...item.replace(/\s+/g, " ").trim()].slice(0, MAX_EVIDENCE_CHARS).join("");
    if (s && !out.includes(s)) out.push(s);
    if (out.length >= MAX_EVIDENCE) break;
  }
  return out;
}

/** A probability, or nothing: a function's only where the location names one. */
function normalizeConfidence(raw: unknown, named: boolean): Confidence | undefined {
  if (typeof raw !== "object" || raw === null) return undefined;
  const { file, function: fn } = raw as Record<string, unknown>;
  const probability = (x: unknown) => typeof x === "number" && x >= 0 && x <= 1;
  if (!probability(file)) return undefined;
  return { file: file as number, ...(named && probability(fn) ? { function: fn as number } : {}) };
}

/**
 * Runs inside the sandbox, as the sandbox user, on the read-only tree: the host never
 * parses untrusted code. For each location: a problem (or null), the 1-based span of the
 * class or function (decorators included), and with snippets on, its first lines.
 */
const CHECK_SCRIPT = String.raw`${SOURCE_OUTLINE}
${MEMORY_CAP}
import ast, json, os, re, sys
root = sys.argv[1]
request = json.load(sys.stdin)
max_lines = int(request.get("snippet_lines", 0))
budget = [int(request.get("snippet_chars", 0))]
files_read = {}
def read_file(path):
    # Once per file, whether a hint confirms a location in it or it is parsed: bytes and lines.
    if path not in files_read:
        with open(path, "rb") as fh:
            data = fh.read()
        files_read[path] = (data, data.decode("utf-8", "replace").split("\n"))
    return files_read[path]
def source_lines(path):
    return read_file(path)[1]
parsed = {}
def parse(path):
    if path not in parsed:
        try:
            data, lines = read_file(path)
            parsed[path] = (ast.parse(data), lines, None)
        except Exception as e:
            parsed[path] = (None, None, "cannot parse: %s" % type(e).__name__)
    return parsed[path]
funcs = (ast.FunctionDef, ast.AsyncFunctionDef)
def find_class(tree, dotted):
    parts = dotted.split(".")
    scope = None
    for name in parts:
        nodes = tree.body if scope is None else scope.body
        scope = next((n for n in nodes if isinstance(n, ast.ClassDef) and n.name == name), None)
        if scope is None and len(parts) == 1:
            scope = next((n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == name), None)
        if scope is None:
            return None
    return scope
def code_at(line):
    # Indentation of a line of code; None for a blank or comment line.
    s = line.lstrip()
    return None if not s or s.startswith("#") else len(line) - len(s)
def hinted(path, s, e, cls, fn):
    # The policy says where the definition is (the baseline's outline read it with ast in this
    # sandbox moments ago): the file's lines confirm it without parsing the file again, ~40 ms
    # for a large one. Anything unexpected answers None, and the file is parsed.
    if type(s) is not int or type(e) is not int or not 1 <= s <= e:
        return None
    lines = source_lines(path)
    if e > len(lines) or code_at(lines[s - 1]) is None:
        return None
    while e > s and code_at(lines[e - 1]) is None:
        e -= 1
    ind = lines[s - 1][:code_at(lines[s - 1])]
    name = fn or cls.split(".")[-1]
    head = re.compile(re.escape(ind) + (r"(?:async[ \t]+)?def[ \t]+" if fn else r"class[ \t]+") + re.escape(name) + r"\b")
    # The span starts at the definition or its first decorator.
    k = next((i for i in range(s - 1, min(e, s + 200)) if head.match(lines[i])), None)
    if k is None or (k != s - 1 and not lines[s - 1].startswith(ind + "@")) or (s > 1 and lines[s - 2].startswith(ind + "@")):
        return None
    width = len(ind)
    # Inside the span every line of code is deeper than the definition (but a signature's
    # closing bracket); the next line of code after it is not.
    for line in lines[k + 1:e]:
        c = code_at(line)
        if c is not None and c <= width and not line.lstrip().startswith((")", "]", "}")):
            return None
    # Index ranges, not slices: up to 200 locations in a file of a million lines stay cheap.
    after = next((c for c in (code_at(lines[i]) for i in range(e, len(lines))) if c is not None), None)
    if after is not None and after > width:
        return None
    # A method's class, or a nested class's parent, is the nearest shallower line of code, and
    # so on up every class the location names ("B.Inner": Inner in B, B at the top level).
    parts = cls.split(".") if cls else []
    at, w = s - 1, width
    for parent in reversed(parts if fn else parts[:-1]):
        k = next((i for i in range(at - 1, -1, -1) if code_at(lines[i]) is not None and code_at(lines[i]) < w), None)
        if k is None or not re.match(r"[ \t]*class[ \t]+" + re.escape(parent) + r"\b", lines[k]):
            return None
        at, w = k, code_at(lines[k])
    if len(parts) > 1 and w != 0:
        return None
    return s, e
read_sources = {}
def read_source(path, lang):
    if path not in read_sources:
        with open(path, "rb") as fh:
            lines = fh.read(4000000).decode("utf-8", "replace").split("\n")
        read_sources[path] = (lines, outline_source(lines, lang))
    return read_sources[path]
def hinted_source(defs, cls, fn, s, e):
    # Of several definitions a location's names fit (overloads, #[cfg] variants, a method of an
    # anonymous class), the one the policy's span names: the first that fits was another's.
    if type(s) is not int or type(e) is not int:
        return None
    last = (cls or "").split(".")[-1]
    owner = lambda d: d["cls"] if fn else ((d["cls"] + "." if d["cls"] else "") + d["name"])
    named = [d for d in defs if d["name"] == (fn or last) and d["kind"] == ("def" if fn else "class")]
    # A class written whole ("A.Inner") that the file has is that one, not another Inner's; a
    # short one ("Inner") is whichever the span names.
    exact = "." in (cls or "") and any(owner(d) == cls for d in named)
    for d in named:
        if d["first"] == s and d["end"] == e and ((owner(d) or None) == (cls or None) or (not exact and cls and owner(d) and owner(d).split(".")[-1] == last)):
            return d
    return None
class Span:
    # A definition read from lines, shaped as the ast nodes answer() takes.
    def __init__(self, d):
        self.decorator_list, self.lineno, self.end_lineno = [], d["first"], d["end"]
def span(node):
    first = min([d.lineno for d in node.decorator_list] + [node.lineno])
    return first, getattr(node, "end_lineno", None) or node.lineno
def answer(problem, node=None, lines=None):
    out = {"problem": problem}
    if node is None:
        return out
    first, last = span(node)
    out["start"], out["end"] = first, last
    if max_lines > 0 and budget[0] > 0:
        chosen = [l[:400] for l in lines[first - 1:min(last, first + max_lines - 1)]]
        text = "\n".join(chosen)[:budget[0]]
        budget[0] -= len(text)
        out["snippet"] = text
        out["truncated"] = last - first + 1 > len(chosen) or len(text) < len("\n".join(chosen))
    return out
out = []
for loc in request["locations"]:
    f = loc.get("file", "")
    path = os.path.normpath(os.path.join(root, f))
    if not f or ".." in f.split("/") or not path.startswith(root + os.sep):
        out.append(answer("path outside the repository")); continue
    if not os.path.isfile(path):
        out.append(answer("file not found")); continue
    cls, fn = loc.get("class_name"), loc.get("function_name")
    lang = lang_of(f)
    if (not cls and not fn) or lang is None:
        out.append(answer(None)); continue
    if lang != "py":
        lines, defs = read_source(path, lang)
        d = hinted_source(defs, cls, fn, loc.get("start_line"), loc.get("end_line")) or find_source_def(defs, cls, fn)
        # Read from lines, a miss may be the reader's: the location stays valid, without a span.
        out.append(answer(None, Span(d), lines) if d else answer(None)); continue
    h = hinted(path, loc.get("start_line"), loc.get("end_line"), cls, fn)
    if h:
        out.append(answer(None, Span({"first": h[0], "end": h[1]}), source_lines(path))); continue
    tree, lines, error = parse(path)
    if error:
        out.append(answer(error)); continue
    if cls:
        c = find_class(tree, cls)
        if c is None:
            out.append(answer("class not found")); continue
        if not fn:
            out.append(answer(None, c, lines)); continue
        m = next((n for n in c.body if isinstance(n, funcs) and n.name == fn), None)
        out.append(answer(None, m, lines) if m else answer("function not found in class")); continue
    m = next((n for n in tree.body if isinstance(n, funcs) and n.name == fn), None)
    m = m or next((n for n in ast.walk(tree) if isinstance(n, funcs) and n.name == fn), None)
    out.append(answer(None, m, lines) if m else answer("function not found"))
print(json.dumps(out))
`;

export type Exec = (argv: string[], options?: ExecOptions) => Promise<ExecResult>;

export interface CheckOptions {
  /** Lines of code returned per location; 0 for none. */
  snippetLines?: number;
}

/** All snippets of one answer together stay under this many characters. */
const SNIPPET_BUDGET_CHARS = 200_000;

interface CheckAnswer {
  problem: string | null;
  start?: number;
  end?: number;
  snippet?: string;
  truncated?: boolean;
}

export async function checkLocations(locations: Location[], workingDir: string, exec: Exec, options: CheckOptions = {}): Promise<CheckedLocation[]> {
  if (locations.length === 0) return [];
  const snippetLines = Math.max(0, Math.floor(options.snippetLines ?? 0));
  // PYTHONSAFEPATH: the working directory is the tree, whose own ast.py must not stand in for the standard one.
  const result = await exec(["env", "PYTHONSAFEPATH=1", "python3", "-c", CHECK_SCRIPT, workingDir], {
    stdin: JSON.stringify({ locations, snippet_lines: snippetLines, snippet_chars: snippetLines > 0 ? SNIPPET_BUDGET_CHARS : 0 }),
    timeoutMs: 30_000,
    maxOutputBytes: 4 << 20,
  });
  let answers: unknown;
  try {
    answers = JSON.parse(result.stdout);
  } catch {
    answers = null;
  }
  // A policy's span was a hint: only the check's own stands.
  const unhinted = locations.map(({ start_line: _start, end_line: _end, ...l }) => l);
  if (!Array.isArray(answers) || answers.length !== locations.length) {
    return unhinted.map((l) => ({ ...l, valid: false, problem: "could not be checked" }));
  }
  // The sandbox's answer is untrusted too: only well-formed fields are taken.
  return unhinted.map((l, i) => {
    const a = (answers as unknown[])[i] as Partial<CheckAnswer> | null;
    if (!a || typeof a !== "object" || a.problem !== null) {
      const problem = a && typeof a === "object" && typeof a.problem === "string" ? a.problem.slice(0, 200) : "could not be checked";
      return { ...l, valid: false, problem };
    }
    const checked: CheckedLocation = { ...l, valid: true };
    if (isLine(a.start) && isLine(a.end) && a.end >= a.start) {
      checked.start_line = a.start;
      checked.end_line = a.end;
      if (snippetLines > 0 && typeof a.snippet === "string") {
        checked.snippet = a.snippet.slice(0, SNIPPET_BUDGET_CHARS);
        checked.snippet_truncated = a.truncated === true;
      }
    }
    return checked;
  });
}

/** At most this many alternatives are kept from a policy. */
const MAX_ALTERNATIVES = 10;

/**
 * An answer and its alternatives checked in one sandbox process. The answer comes first, so it
 * has the snippets' budget; alternatives that repeat a location of the answer or do not exist
 * in the tree are dropped (they are leads, not claims), and carry no snippet.
 */
export async function checkAnswer(
  locations: Location[],
  alternatives: Location[],
  workingDir: string,
  exec: Exec,
  options: CheckOptions = {},
): Promise<{ locations: CheckedLocation[]; alternatives: CheckedLocation[] }> {
  const answered = new Set(locations.map((l) => l.file));
  const leads = alternatives.filter((l) => !answered.has(l.file)).slice(0, MAX_ALTERNATIVES);
  const checked = await checkLocations([...locations, ...leads], workingDir, exec, options);
  return {
    locations: checked.slice(0, locations.length),
    alternatives: checked
      .slice(locations.length)
      .filter((l) => l.valid)
      .map(({ snippet: _s, snippet_truncated: _t, ...l }) => l),
  };
}

const isLine = (n: unknown): n is number => typeof n === "number" && Number.isInteger(n) && n >= 1 && n <= 10_000_000;
