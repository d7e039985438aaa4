/**
 * How well the sandbox's line reader of other languages (src/agent/sourceOutline.ts) finds
 * definitions, against TypeScript's own parser on JavaScript/TypeScript files: functions,
 * methods, constructors, accessors and arrow functions bound to a name, not nested in a
 * function, matched by name and start line (within 3 lines: decorators, comments). Run on
 * trees we fetched ourselves; the service never parses a repository's code on the host.
 *
 *   npx tsx bench/baseline/readerCheck.ts FILE.ts...
 */
import ts from "typescript";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execFileSync } from "node:child_process";
import { PY_TEXT } from "../../src/agent/baseline/pyText.js";
import { SOURCE_OUTLINE } from "../../src/agent/sourceOutline.js";

type ReaderDef = [kind: string, cls: string | null, name: string, start: number, end: number];

const files = process.argv.slice(2);
if (files.length === 0) throw new Error("usage: readerCheck.ts FILE.ts...");
const dir = mkdtempSync(join(tmpdir(), "reader-check-"));
const script = join(dir, "reader.py");
writeFileSync(
  script,
  `${PY_TEXT}\n${SOURCE_OUTLINE}\nout = {}\nfor f in sys.argv[1:]:\n    lines = open(f, encoding="utf-8", errors="replace").read().split("\\n")\n    out[f] = [(d["kind"], d["cls"], d["name"], d["start"], d["end"]) for d in outline_source(lines, lang_of(f))]\njson.dump(out, sys.stdout)\n`,
);
const reader = JSON.parse(execFileSync("python3", [script, ...files], { maxBuffer: 1 << 28 }).toString()) as Record<string, ReaderDef[]>;
rmSync(dir, { recursive: true, force: true });

/** The parser's definitions of one file, as the reader should find them. */
function parsed(file: string): { name: string; line: number; end: number }[] {
  const sf = ts.createSourceFile(file, readFileSync(file, "utf8"), ts.ScriptTarget.Latest, true, file.endsWith("x") ? ts.ScriptKind.TSX : undefined);
  const lineOf = (pos: number) => sf.getLineAndCharacterOfPosition(pos).line + 1;
  const out: { name: string; line: number; end: number }[] = [];
  const visit = (node: ts.Node, inFunction: boolean) => {
    let name: string | undefined;
    if ((ts.isFunctionDeclaration(node) || ts.isMethodDeclaration(node) || ts.isGetAccessor(node) || ts.isSetAccessor(node)) && node.body && node.name) name = node.name.getText(sf);
    else if (ts.isConstructorDeclaration(node) && node.body) name = "constructor";
    else if ((ts.isVariableDeclaration(node) || ts.isPropertyDeclaration(node)) && node.initializer && ts.isIdentifier(node.name)) {
      const init = node.initializer;
      if ((ts.isArrowFunction(init) || ts.isFunctionExpression(init)) && (ts.isBlock(init.body) || ts.isArrowFunction(init.body))) name = node.name.text;
    }
    if (name && !inFunction) out.push({ name, line: lineOf(node.getStart(sf)), end: lineOf(node.getEnd()) });
    const nowInFunction = inFunction || name !== undefined || ts.isArrowFunction(node) || ts.isFunctionExpression(node);
    ts.forEachChild(node, (c) => visit(c, nowInFunction));
  };
  visit(sf, false);
  return out;
}

let found = 0;
let missed = 0;
let extra = 0;
let sameEnd = 0;
const misses: string[] = [];
const extras: string[] = [];
for (const f of files) {
  const mine = (reader[f] ?? []).filter((d) => d[0] === "def");
  const used = new Set<number>();
  for (const g of parsed(f)) {
    const k = mine.findIndex((d, i) => !used.has(i) && d[2] === g.name && Math.abs(d[3] - g.line) <= 3);
    if (k < 0) {
      missed++;
      if (misses.length < 20) misses.push(`${f}:${g.line} ${g.name}`);
      continue;
    }
    used.add(k);
    found++;
    if (mine[k]![4] === g.end) sameEnd++;
  }
  mine.forEach((d, i) => {
    if (used.has(i)) return;
    extra++;
    if (extras.length < 20) extras.push(`${f}:${d[3]} ${d[2]}`);
  });
}
const pct = (a: number, b: number) => (b ? ((100 * a) / b).toFixed(1) : "-");
console.log(`${files.length} files; parser ${found + missed} definitions, reader ${found + extra}: recall ${pct(found, found + missed)}, precision ${pct(found, found + extra)}, same end line ${pct(sameEnd, found)}`);
console.log(`first misses:\n  ${misses.join("\n  ")}\nfirst extras:\n  ${extras.join("\n  ")}`);
