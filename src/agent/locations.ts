import type { Location } from "./policy.js";
import type { ExecOptions, ExecResult } from "../sandbox/types.js";

/**
 * What a policy answers is untrusted: paths are normalized, duplicates dropped, and every
 * location is checked against the tree at the commit (file exists; class and function
 * exist, found by Python's own ast inside the sandbox). Invalid entries are kept, marked.
 */

export interface CheckedLocation extends Location {
  valid: boolean;
  problem?: string;
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
    const evidence = normalizeEvidence(raw.evidence);
    const loc: Location = {
      file,
      ...(className ? { class_name: className } : {}),
      ...(functionName ? { function_name: functionName } : {}),
      ...(evidence.length ? { evidence } : {}),
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

/** Runs inside the sandbox, as the sandbox user, on the read-only tree. */
const CHECK_SCRIPT = String.raw`
import ast, json, os, sys
root = sys.argv[1]
out = []
for loc in json.load(sys.stdin):
    f = loc.get("file", "")
    path = os.path.normpath(os.path.join(root, f))
    if not f or ".." in f.split("/") or not path.startswith(root + os.sep):
        out.append("path outside the repository"); continue
    if not os.path.isfile(path):
        out.append("file not found"); continue
    cls, fn = loc.get("class_name"), loc.get("function_name")
    if not cls and not fn:
        out.append(None); continue
    if not f.endswith(".py"):
        out.append(None); continue
    try:
        with open(path, "rb") as fh:
            tree = ast.parse(fh.read())
    except Exception as e:
        out.append("cannot parse: %s" % type(e).__name__); continue
    def find_class(body, dotted):
        parts = dotted.split(".")
        scope = None
        for name in parts:
            nodes = body if scope is None else scope.body
            scope = next((n for n in nodes if isinstance(n, ast.ClassDef) and n.name == name), None)
            if scope is None:
                scope = next((n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == name), None) if len(parts) == 1 else None
            if scope is None:
                return None
        return scope
    funcs = (ast.FunctionDef, ast.AsyncFunctionDef)
    if cls:
        c = find_class(tree.body, cls)
        if c is None:
            out.append("class not found"); continue
        if fn and not any(isinstance(n, funcs) and n.name == fn for n in c.body):
            out.append("function not found in class"); continue
        out.append(None); continue
    if any(isinstance(n, funcs) and n.name == fn for n in tree.body):
        out.append(None)
    elif any(isinstance(n, funcs) and n.name == fn for n in ast.walk(tree)):
        out.append(None)
    else:
        out.append("function not found")
print(json.dumps(out))
`;

export type Exec = (argv: string[], options?: ExecOptions) => Promise<ExecResult>;

export async function checkLocations(locations: Location[], workingDir: string, exec: Exec): Promise<CheckedLocation[]> {
  if (locations.length === 0) return [];
  const result = await exec(["python3", "-c", CHECK_SCRIPT, workingDir], {
    stdin: JSON.stringify(locations),
    timeoutMs: 30_000,
    maxOutputBytes: 1 << 20,
  });
  let problems: unknown;
  try {
    problems = JSON.parse(result.stdout);
  } catch {
    problems = null;
  }
  if (!Array.isArray(problems) || problems.length !== locations.length) {
    return locations.map((l) => ({ ...l, valid: false, problem: "could not be checked" }));
  }
  return locations.map((l, i) => {
    const p = problems[i];
    return typeof p === "string" ? { ...l, valid: false, problem: p.slice(0, 200) } : { ...l, valid: true };
  });
}
