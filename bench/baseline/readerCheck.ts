import ts from "typescript";
import Parser from "web-tree-sitter";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { extname, join } from "node:path";
import { execFileSync } from "node:child_process";
import { parseArgs } from "node:util";
import { PY_TEXT } from "../../src/agent/baseline/pyText.js";
import { SOURCE_OUTLINE } from "../../src/agent/sourceOutline.js";
import { SCAN_SKIP_DIRS, SCAN_TOP_SKIP_DIRS } from "../../src/agent/baseline/repoScan.js";

/**
 * How well the sandbox's line reader of other languages (src/agent/sourceOutline.ts) finds
 * definitions, against a real parser: TypeScript's own for JavaScript/TypeScript files,
 * tree-sitter's grammars for Go, Rust, Java, Kotlin, Ruby, PHP, C#, Swift, C and C++. Counted:
 * functions, methods and constructors with a body (Ruby's empty ones too; in JavaScript also
 * accessors, arrow functions bound to a name and functions assigned to a prototype's property),
 * not nested in a function (nor, in Rust, test functions and test modules), matched by name and
 * by the line that names them (within 3 lines; TypeScript's parser gives the line decorators
 * start on). Run on trees we fetched ourselves; the service never parses a repository's code on
 * the host.
 *
 *   npx tsx bench/baseline/readerCheck.ts [--show N] FILE|DIR...
 *
 * A directory stands for the files the scan would read in it: source of other languages than
 * Python, without the directories the scan skips and the tests, fixtures and generated code
 * the reader's own rule leaves out. Prints a line per language and the first N misses and
 * extras (default 20); files of a language no parser here reads are counted apart.
 */
type ReaderDef = [kind: string, cls: string | null, name: string, start: number, end: number];

/** After the reader's text: each file given, and the files of each directory given, outlined. */
const WALK = String.raw`
import os
SKIP_DIRS = set(${JSON.stringify(SCAN_SKIP_DIRS)})
TOP_SKIP = set(${JSON.stringify(SCAN_TOP_SKIP_DIRS)})
def source_files(root):
    for top, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIP_DIRS and not (top == root and d in TOP_SKIP))
        for n in sorted(names):
            path = os.path.join(top, n)
            lang = lang_of(n)
            if lang not in (None, "py") and not OTHER_TESTISH.search(os.path.relpath(path, root).replace(os.sep, "/")):
                yield path
out = {}
for arg in sys.argv[1:]:
    for f in (source_files(arg) if os.path.isdir(arg) else [arg]):
        lines = open(f, encoding="utf-8", errors="replace").read().split("\n")
        out[f] = [(d["kind"], d["cls"], d["name"], d["start"], d["end"]) for d in outline_source(lines, lang_of(f))]
json.dump(out, sys.stdout)
`;

const { values: opts, positionals: args } = parseArgs({ options: { show: { type: "string", default: "20" } }, allowPositionals: true });
if (args.length === 0) throw new Error("usage: readerCheck.ts [--show N] FILE|DIR...");
const show = Number(opts.show);
const dir = mkdtempSync(join(tmpdir(), "reader-check-"));
const script = join(dir, "reader.py");
writeFileSync(
  script,
  `${PY_TEXT}\n${SOURCE_OUTLINE}\n${WALK}`,
);
const reader = JSON.parse(execFileSync("python3", [script, ...args], { maxBuffer: 1 << 28 }).toString()) as Record<string, ReaderDef[]>;
const files = Object.keys(reader);
rmSync(dir, { recursive: true, force: true });

interface Def {
  name: string;
  line: number;
  end: number;
}

/** The TypeScript parser's definitions of a JavaScript/TypeScript file. */
function parsedTs(file: string): Def[] {
  const sf = ts.createSourceFile(file, readFileSync(file, "utf8"), ts.ScriptTarget.Latest, true, file.endsWith("x") ? ts.ScriptKind.TSX : undefined);
  const lineOf = (pos: number) => sf.getLineAndCharacterOfPosition(pos).line + 1;
  const out: Def[] = [];
  const visit = (node: ts.Node, inFunction: boolean) => {
    let name: string | undefined;
    if ((ts.isFunctionDeclaration(node) || ts.isMethodDeclaration(node) || ts.isGetAccessor(node) || ts.isSetAccessor(node)) && node.body && node.name) name = node.name.getText(sf);
    else if (ts.isConstructorDeclaration(node) && node.body) name = "constructor";
    else if ((ts.isVariableDeclaration(node) || ts.isPropertyDeclaration(node)) && node.initializer && ts.isIdentifier(node.name)) {
      const init = node.initializer;
      if ((ts.isArrowFunction(init) || ts.isFunctionExpression(init)) && (ts.isBlock(init.body) || ts.isArrowFunction(init.body))) name = node.name.text;
    } else if (ts.isBinaryExpression(node) && node.operatorToken.kind === ts.SyntaxKind.EqualsToken && ts.isPropertyAccessExpression(node.left) && ts.isFunctionExpression(node.right)) {
      // `Reply.prototype.send = function (…) {`: a method, as the reader counts it.
      const target = node.left.expression;
      if (ts.isPropertyAccessExpression(target) && target.name.text === "prototype") name = node.left.name.text;
    }
    if (name && !inFunction) out.push({ name, line: lineOf(node.getStart(sf)), end: lineOf(node.getEnd()) });
    const nowInFunction = inFunction || name !== undefined || ts.isArrowFunction(node) || ts.isFunctionExpression(node);
    ts.forEachChild(node, (c) => visit(c, nowInFunction));
  };
  visit(sf, false);
  return out;
}

/** Per tree-sitter grammar: the node types that are definitions, and those that open a function. */
const GRAMMARS: Record<string, { lang: string; defs: string[]; scopes: string[] }> = {
  ".go": { lang: "go", defs: ["function_declaration", "method_declaration"], scopes: ["func_literal"] },
  ".rs": { lang: "rust", defs: ["function_item"], scopes: ["closure_expression"] },
  ".java": { lang: "java", defs: ["method_declaration", "constructor_declaration"], scopes: ["lambda_expression"] },
  ".kt": { lang: "kotlin", defs: ["function_declaration", "secondary_constructor"], scopes: ["lambda_literal", "anonymous_function"] },
  ".rb": { lang: "ruby", defs: ["method", "singleton_method"], scopes: ["block", "do_block", "lambda"] },
  ".php": { lang: "php", defs: ["function_definition", "method_declaration"], scopes: ["anonymous_function_creation_expression", "arrow_function"] },
  ".cs": { lang: "c_sharp", defs: ["method_declaration", "constructor_declaration"], scopes: ["lambda_expression", "anonymous_method_expression"] },
  ".swift": { lang: "swift", defs: ["function_declaration", "init_declaration"], scopes: ["lambda_literal"] },
  ".c": { lang: "c", defs: ["function_definition"], scopes: [] },
  // Headers are read as C++: its grammar reads C's too.
  ...Object.fromEntries([".h", ".cc", ".cpp", ".hpp"].map((ext) => [ext, { lang: "cpp", defs: ["function_definition"], scopes: ["lambda_expression"] }])),
};
const require = createRequire(import.meta.url);
await Parser.init();
const parsers = new Map<string, Parser>();
async function parserFor(lang: string): Promise<Parser> {
  let p = parsers.get(lang);
  if (!p) {
    p = new Parser();
    p.setLanguage(await Parser.Language.load(require.resolve(`tree-sitter-wasms/out/tree-sitter-${lang}.wasm`)));
    parsers.set(lang, p);
  }
  return p;
}

/** Rust's tests (`#[test]`, `#[cfg(test)] mod`): the attributes just before a node. */
function testAttributed(node: Parser.SyntaxNode): boolean {
  for (let prev = node.previousNamedSibling; prev?.type === "attribute_item"; prev = prev.previousNamedSibling) {
    if (/^#\[(test|cfg\(test\)|tokio::test)/.test(prev.text)) return true;
  }
  return false;
}

/** A definition's name as the reader gives it (C's and C++'s sit in declarators), and where it is. */
function nameOf(node: Parser.SyntaxNode): { text: string; startPosition: Parser.Point } | undefined {
  const named = node.childForFieldName("name");
  if (named) return named;
  if (node.type === "secondary_constructor") return { text: "constructor", startPosition: node.startPosition };
  if (node.type === "init_declaration") return { text: "init", startPosition: node.startPosition };
  let d = node.childForFieldName("declarator");
  while (d?.childForFieldName("declarator")) d = d.childForFieldName("declarator");
  if (d) return d.childForFieldName("name") ?? d;
  return node.namedChildren.find((c) => c.type === "simple_identifier");
}

/** Whether a definition has a body (an abstract or interface method has none; Ruby's "def x;
 * end" has no body node and counts all the same; Kotlin's secondary constructor keeps its
 * braces as bare tokens). */
function hasBody(node: Parser.SyntaxNode, lang: string): boolean {
  if (lang === "ruby") return true;
  const body = node.childForFieldName("body") ?? node.namedChildren.find((c) => c.type === "function_body");
  return body !== undefined && body !== null ? true : node.text.trimEnd().endsWith("}");
}

async function parsedTreeSitter(file: string, grammar: (typeof GRAMMARS)[string]): Promise<Def[]> {
  const tree = (await parserFor(grammar.lang)).parse(readFileSync(file, "utf8"));
  const out: Def[] = [];
  const visit = (node: Parser.SyntaxNode, inFunction: boolean) => {
    if (grammar.lang === "rust" && (node.type === "function_item" || node.type === "mod_item") && testAttributed(node)) return;
    const isDef = grammar.defs.includes(node.type) && hasBody(node, grammar.lang);
    const name = isDef ? nameOf(node) : undefined;
    // The line that names it, as the reader's start (annotations over lines come before it).
    if (name && !inFunction) out.push({ name: name.text, line: name.startPosition.row + 1, end: node.endPosition.row + 1 });
    const nowInFunction = inFunction || isDef || grammar.scopes.includes(node.type);
    for (const c of node.namedChildren) visit(c, nowInFunction);
  };
  visit(tree.rootNode, false);
  tree.delete();
  return out;
}

const TS_EXT = new Set([".ts", ".tsx", ".mts", ".cts", ".js", ".jsx", ".mjs", ".cjs"]);
interface Tally {
  files: number;
  found: number;
  missed: number;
  extra: number;
  sameEnd: number;
}
const tallies = new Map<string, Tally>();
const unparsed = new Map<string, number>();
const misses: string[] = [];
const extras: string[] = [];
for (const f of files) {
  const ext = extname(f).toLowerCase();
  const grammar = GRAMMARS[ext];
  if (!TS_EXT.has(ext) && !grammar) {
    unparsed.set(ext, (unparsed.get(ext) ?? 0) + 1);
    continue;
  }
  const lang = grammar?.lang ?? "typescript/javascript";
  const t = tallies.get(lang) ?? { files: 0, found: 0, missed: 0, extra: 0, sameEnd: 0 };
  tallies.set(lang, t);
  t.files++;
  const mine = (reader[f] ?? []).filter((d) => d[0] === "def");
  const used = new Set<number>();
  for (const g of grammar ? await parsedTreeSitter(f, grammar) : parsedTs(f)) {
    const k = mine.findIndex((d, i) => !used.has(i) && d[2] === g.name && Math.abs(d[3] - g.line) <= 3);
    if (k < 0) {
      t.missed++;
      if (misses.length < show) misses.push(`${f}:${g.line} ${g.name}`);
      continue;
    }
    used.add(k);
    t.found++;
    if (mine[k]![4] === g.end) t.sameEnd++;
  }
  mine.forEach((d, i) => {
    if (used.has(i)) return;
    t.extra++;
    if (extras.length < show) extras.push(`${f}:${d[3]} ${d[2]}`);
  });
}
const pct = (a: number, b: number) => (b ? ((100 * a) / b).toFixed(1) : "-");
for (const [lang, t] of tallies) {
  console.log(`${lang}: ${t.files} files; parser ${t.found + t.missed} definitions, reader ${t.found + t.extra}: recall ${pct(t.found, t.found + t.missed)}, precision ${pct(t.found, t.found + t.extra)}, same end line ${pct(t.sameEnd, t.found)}`);
}
if (unparsed.size) console.log(`no parser here: ${[...unparsed].map(([ext, n]) => `${n} ${ext || "(none)"}`).join(", ")} files`);
console.log(`first misses:\n  ${misses.join("\n  ")}\nfirst extras:\n  ${extras.join("\n  ")}`);
