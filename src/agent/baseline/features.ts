import { createHash } from "node:crypto";
import { bm25, idf } from "./bm25.js";
import type { NamedCommit } from "../policy.js";
import type { IssueTerms } from "./issueTerms.js";
import type { OutlinedDef, OutlinedFile } from "./outline.js";
import type { Query } from "./query.js";
import type { ScanResult, ScannedFile } from "./repoScan.js";

/**
 * Features of candidate files and of the functions in them, from what the sandbox found.
 * Pure: the same features feed the policy and the offline fitting of their weights.
 * Score-like features are divided by their maximum over the repository's files (or over
 * the functions of the same file), so that weights carry over between short and long issues.
 */

export const FILE_FEATURES = [
  "pathMention",
  "frameInner",
  "qualified",
  "frameFuncDefined",
  "phrase",
  "option",
  "textProse",
  "textIdent",
  "pathWords",
  "mentions",
  "namedCommit",
  "vendored",
  "outsidePackage",
  "size",
] as const;
export type FileFeature = (typeof FILE_FEATURES)[number];

export const FUNCTION_FEATURES = [
  "nameExact",
  "qualified",
  "classNamed",
  "classWords",
  "namedClassInit",
  "frame",
  "frameInner",
  "pointed",
  "namedCommit",
  "phrase",
  "option",
  "nameWords",
  "argWords",
  "docWords",
  "bodyWords",
  "titleWords",
  "mentions",
  "calledByNamed",
  "callsNamed",
  "size",
  "dunder",
  "private",
  "property",
] as const;
export type FunctionFeature = (typeof FUNCTION_FEATURES)[number];

/** The second look at the outlined files (rerank.ts): the first score and their best definitions. */
export const RERANK_FEATURES = ["first", "defName", "defArgs", "defDoc", "defBody", "defTitle", "defNamed", "defPointed"] as const;
export type RerankFeature = (typeof RERANK_FEATURES)[number];

export interface Candidate<F extends string> {
  features: Record<F, number>;
  /** Why, in words a calling agent can check. */
  evidence: string[];
}

export interface FileCandidate extends Candidate<FileFeature> {
  path: string;
}

export interface FunctionCandidate extends Candidate<FunctionFeature> {
  def: OutlinedDef;
}

/** What every feature needs to know about the issue and the repository. */
export interface RankContext {
  terms: IssueTerms;
  query: Query;
  scan: ScanResult;
  /** Query key → weight, for prose words, for identifier parts, and for both. */
  proseKeys: Map<string, number>;
  identKeys: Map<string, number>;
  allKeys: Map<string, number>;
  /** Keys of words in the issue's title. */
  titleKeys: Map<string, number>;
  /** Query key → the issue's word it came from, for evidence. */
  keyWord: Map<string, string>;
  /** Directories holding an __init__.py. */
  packages: Set<string>;
  idfs: Map<string, number>;
  /** Exact identifier → how strongly the issue points at it. */
  identWeight: Map<string, number>;
  /** Exact identifier → its rarity among files (idf). */
  identIdf: Map<string, number>;
  /** Files each phrase was found in. */
  phraseFiles: number[];
  /** Repository file → best match of an issue path (0..1), the frames in it and the lines pointed at. */
  pathMatches: Map<string, { quality: number; frames: IssueTerms["frames"]; pointers: IssueTerms["pointers"] }>;
  avgLines: number;
  /** Source file → the named commit that changed it (in words), and 1/√n for the n source files that commit changed. */
  commitFiles: Map<string, { commit: string; share: number }>;
  /** `file\0def name` → the named commit whose hunks sit in or change that definition (in words). */
  commitDefs: Map<string, string>;
}

const VENDORED = /(^|\/)(_?vendor(ed)?|externals?|extern|third_party|thirdparty)\//;
const NESTED_PACKAGES = /^[^/]+\/(.+\/)?packages\//;

export function rankContext(terms: IssueTerms, query: Query, scan: ScanResult, commits: NamedCommit[] = []): RankContext {
  const proseKeys = new Map<string, number>();
  const identKeys = new Map<string, number>();
  const keyWord = new Map<string, string>();
  query.words.forEach((w, i) => {
    const key = scan.keys[i];
    const from = query.wordFrom[i];
    if (!key || !from) return;
    if (!keyWord.has(key) || w.length < keyWord.get(key)!.length) keyWord.set(key, w);
    if (from.prose) proseKeys.set(key, 1);
    if (from.ident > 0) identKeys.set(key, Math.max(identKeys.get(key) ?? 0, Math.min(1, from.ident / 3)));
  });
  const titleWords = new Set(terms.title.match(/[a-z0-9]+/g) ?? []);
  const titleKeys = new Map<string, number>();
  query.words.forEach((w, i) => {
    const key = scan.keys[i];
    if (key && titleWords.has(w.toLowerCase())) titleKeys.set(key, 1);
  });
  const allKeys = new Map(proseKeys);
  for (const [k, w] of identKeys) allKeys.set(k, Math.max(allKeys.get(k) ?? 0, w));

  const df = new Map<string, number>();
  for (const f of scan.files) for (const k of f.tf.keys()) df.set(k, (df.get(k) ?? 0) + 1);
  const n = Math.max(scan.paths.length, 1);
  const idfs = new Map<string, number>();
  for (const k of allKeys.keys()) idfs.set(k, idf(df.get(k) ?? 0, n));

  const idDf = new Map<string, number>();
  for (const f of scan.files) for (const name of f.ids.keys()) idDf.set(name, (idDf.get(name) ?? 0) + 1);
  const identIdf = new Map([...idDf].map(([name, d]) => [name, idf(d, n)]));

  const phraseFiles = query.phrases.map(() => 0);
  for (const f of scan.files) for (const p of new Set(f.phrases.map((x) => x.phrase))) if (p < phraseFiles.length) phraseFiles[p]!++;

  const avgLines = scan.files.length ? scan.files.reduce((s, f) => s + f.lines, 0) / scan.files.length : 1;
  // A diff link names a file (as a path does) in a change (as a named commit does): it counts as both.
  const linked = linkedDiffFiles(terms.diffAnchors, scan.paths);
  return {
    terms,
    query,
    scan,
    proseKeys,
    identKeys,
    allKeys,
    titleKeys,
    keyWord,
    packages: new Set(scan.paths.filter((p) => p.endsWith("__init__.py")).map(dirOf)),
    idfs,
    identWeight: new Map(terms.identifiers.map((i) => [i.name, i.weight])),
    identIdf,
    phraseFiles,
    pathMatches: matchIssuePaths(terms, scan.paths, linked),
    avgLines,
    ...commitMaps(commits, scan.paths, linked),
  };
}

/**
 * The files the issue's diff links point at: the path whose SHA-256 (or, in older links, MD5)
 * is the anchor. Hashed only when the issue has such a link.
 */
export function linkedDiffFiles(anchors: string[], paths: string[]): string[] {
  if (!anchors.length) return [];
  const wanted = new Set(anchors);
  // Only the hashes the anchors are written in: 64 hex digits are SHA-256, 32 are MD5.
  const algorithms = [...new Set(anchors.map((a) => (a.length === 64 ? "sha256" : "md5")))];
  return paths.filter((p) => algorithms.some((algorithm) => wanted.has(createHash(algorithm).update(p).digest("hex"))));
}

/**
 * A commit that changed one source file points at it; one that changed ten points at each
 * less (1/√n fitted a little better than 1/n, BENCHMARKS.md). A file moved since
 * (`_pytest/x.py`, now `src/_pytest/x.py`) is found by the longest common suffix of at least
 * two segments; tests and files removed since are left out.
 */
function commitMaps(commits: NamedCommit[], paths: string[], linked: string[]): Pick<RankContext, "commitFiles" | "commitDefs"> {
  const known = new Set(paths);
  const match = suffixMatcher(paths);
  const now = (f: string) => {
    if (known.has(f)) return f;
    const m = match(f);
    return m && m.segments >= 2 ? m.path : undefined;
  };
  const commitFiles: RankContext["commitFiles"] = new Map();
  const commitDefs: RankContext["commitDefs"] = new Map();
  for (const c of commits) {
    const commit = c.ref.includes("#") ? `commit ${c.sha.slice(0, 10)}, which mentions ${c.ref.slice(c.ref.indexOf("#"))} as the issue does` : `commit ${c.ref}, which the issue names`;
    const files = [...new Set(c.files.map(now).filter((f): f is string => f !== undefined))];
    const share = 1 / Math.sqrt(files.length);
    for (const f of files) if (share > (commitFiles.get(f)?.share ?? 0)) commitFiles.set(f, { commit, share });
    for (const d of c.defs) {
      const file = now(d.file);
      if (file !== undefined && !commitDefs.has(`${file}\0${d.name}`)) commitDefs.set(`${file}\0${d.name}`, commit);
    }
  }
  // The one file of a change the reporter looked at: as sure as a commit that changed that file alone.
  for (const f of linked) commitFiles.set(f, { commit: "the commit or pull request the issue links to (its diff of this file)", share: 1 });
  return { commitFiles, commitDefs };
}

/**
 * Issue paths (often absolute, or from an installed copy) matched to repository files by
 * their longest common suffix of path segments. One segment (a bare file name) counts only
 * when the issue wrote no directory. The files its diff links name are matched already.
 */
export function matchIssuePaths(terms: IssueTerms, paths: string[], linked: string[] = []): RankContext["pathMatches"] {
  const match = suffixMatcher(paths);
  const out: RankContext["pathMatches"] = new Map(linked.map((f) => [f, { quality: 1, frames: [], pointers: [] }]));
  for (const issuePath of terms.paths) {
    const parts = issuePath.split("/");
    const found = match(issuePath);
    if (!found) continue;
    const { path: best, segments: bestLen, sameName } = found;
    const quality = bestLen >= 2 || parts.length === 1 ? (sameName === 1 || bestLen >= 2 ? 1 : 0.5) : 0.3;
    const frames = terms.frames.filter((fr) => fr.path === issuePath);
    const pointers = terms.pointers.filter((p) => p.path === issuePath);
    const prev = out.get(best);
    out.set(best, {
      quality: Math.max(prev?.quality ?? 0, quality),
      frames: [...(prev?.frames ?? []), ...frames],
      pointers: [...(prev?.pointers ?? []), ...pointers],
    });
  }
  return out;
}

/** The repository file sharing the longest suffix of segments with a path, ties to the first by name. */
function suffixMatcher(paths: string[]): (p: string) => { path: string; segments: number; sameName: number } | undefined {
  const byBase = new Map<string, string[]>();
  for (const p of paths) {
    const base = p.slice(p.lastIndexOf("/") + 1);
    const list = byBase.get(base) ?? [];
    list.push(p);
    byBase.set(base, list);
  }
  return (path) => {
    const parts = path.split("/");
    const same = byBase.get(parts[parts.length - 1]!) ?? [];
    let best: string | undefined;
    let bestLen = 0;
    for (const f of same) {
      const fp = f.split("/");
      let k = 0;
      while (k < parts.length && k < fp.length && parts[parts.length - 1 - k] === fp[fp.length - 1 - k]) k++;
      if (k > bestLen || (k === bestLen && best !== undefined && f < best)) {
        best = f;
        bestLen = k;
      }
    }
    return best === undefined ? undefined : { path: best, segments: bestLen, sameName: same.length };
  };
}

const log1p = (x: number) => Math.log(1 + x);
const dirOf = (p: string) => (p.includes("/") ? p.slice(0, p.lastIndexOf("/")) : "");
/**
 * The issue's words behind matched keys, rarest first; with the file's own spellings, as the file
 * spells them, the issue's word after one that differs ("delete (deleting)"): the words meet by
 * stem, and the agent checks them with a plain search.
 */
function wordsOf(ctx: RankContext, keys: Iterable<string>, n = 6, forms?: Map<string, string>): string {
  const ks = [...new Set(keys)].filter((k) => ctx.allKeys.has(k)).sort((a, b) => (ctx.idfs.get(b) ?? 0) - (ctx.idfs.get(a) ?? 0) || (a < b ? -1 : 1));
  return ks
    .slice(0, n)
    .map((k) => {
      const word = ctx.keyWord.get(k) ?? k;
      const form = forms?.get(k);
      return form && form !== word.toLowerCase() ? `${form} (${word})` : word;
    })
    .join(", ");
}
/**
 * At most n characters, an ellipsis marking a cut. Not through a surrogate pair: half an emoji
 * is a lone surrogate, which strict JSON readers (Python's, serde) refuse in the answer.
 */
export function clip(s: string, n = 80): string {
  if (s.length <= n) return s;
  const end = /[\ud800-\udbff]/.test(s[n - 2] ?? "") ? n - 2 : n - 1;
  return `${s.slice(0, end)}…`;
}
/**
 * A phrase's line as a function's evidence words it (the file's says "the file's line …"); an
 * option already quoted as the code writes it is not quoted again.
 */
function phraseEvidence(query: Query, h: { phrase: number; line: number }): string {
  const text = clip(query.phrases[h.phrase] ?? "");
  return `line ${h.line} holds the ${query.phraseKinds[h.phrase] === "option" ? "option" : "quoted text"} ${/^["']/.test(text) ? text : `"${text}"`}`;
}

const FILE_TERMS = "issue terms in the file: ";

/**
 * A file's evidence with its issue terms as the file spells them, once its outline has read its
 * spellings: the scan that ranked the file knows only stems, and the agent checks a term with a
 * plain search ("deferred (defer)", as a function's terms are said).
 */
export function spelledFileEvidence(ctx: RankContext, path: string, evidence: string[], forms: Map<string, string> | undefined): string[] {
  const scanned = forms && ctx.scan.files.find((f) => f.path === path);
  if (!scanned) return evidence;
  const spelled = wordsOf(ctx, scanned.tf.keys(), 6, forms);
  return evidence.map((e) => (e.startsWith(FILE_TERMS) && spelled ? `${FILE_TERMS}${spelled}` : e));
}

/** Raw (unnormalized) file features for every scanned file with a signal. */
export function fileFeatures(ctx: RankContext): FileCandidate[] {
  const { terms, query } = ctx;
  const qualified = terms.qualified;
  const frameFuncs = new Map<string, number>();
  for (const f of terms.frames) if (f.func) frameFuncs.set(f.func, Math.max(frameFuncs.get(f.func) ?? 0, f.depth));

  const out: FileCandidate[] = [];
  const seen = new Set<string>();
  const files: ScannedFile[] = [...ctx.scan.files];
  // A file the issue names (or a commit it names changed) but with no other signal is still a candidate.
  for (const path of [...ctx.pathMatches.keys(), ...ctx.commitFiles.keys()]) {
    if (!files.some((f) => f.path === path)) files.push({ path, lines: 0, tf: new Map(), pathTerms: new Map(), ids: new Map(), defs: [], phrases: [] });
  }
  for (const f of files) {
    if (seen.has(f.path)) continue;
    seen.add(f.path);
    const ev: string[] = [];
    const pm = ctx.pathMatches.get(f.path);
    const inner = pm?.frames.length ? Math.max(...pm.frames.map((fr) => fr.depth)) : 0;
    if (pm?.frames.length) {
      const last = pm.frames.reduce((a, b) => (b.depth > a.depth ? b : a));
      // The repository's path, not the issue's: the issue's is untrusted text (any characters a
      // frame's path may hold) that would reach the calling agent as the service's own words.
      ev.push(`traceback frame: ${f.path}${last.func ? ` in ${last.func}` : ""}`);
    } else if (pm) ev.push(`the issue names the file ${f.path}`);

    let frameFuncDefined = 0;
    for (const d of f.defs) frameFuncDefined = Math.max(frameFuncDefined, frameFuncs.get(d.name) ?? 0);
    const defined = new Set(f.defs.map((d) => d.name));
    // With the line, so the calling agent checks the evidence in one read.
    const lineOf = (name: string, after = 0) => (f.defs.find((d) => d.name === name && d.line > after) ?? f.defs.find((d) => d.name === name))?.line;
    // "The file": these lines are the file's, often outside the function a location names.
    if (f.defs.length) ev.push(`the file defines ${[...defined].slice(0, 4).map((n) => `\`${n}\` (line ${lineOf(n)})`).join(", ")}, named in the issue`);
    const pairs = qualified.filter(([a, b]) => defined.has(a) && defined.has(b));
    if (pairs.length) {
      const [cls, name] = pairs[0]!;
      // The scan's definitions carry no nesting: a method is claimed only when defined after its class.
      const classLine = lineOf(cls) ?? 0;
      const method = f.defs.find((d) => d.name === name && d.line > classLine);
      ev.push(method ? `the file defines \`${cls}.${name}\` (line ${method.line}) as the issue writes it` : `the file defines \`${cls}\` (line ${classLine}) and \`${name}\` (line ${lineOf(name)}), written \`${cls}.${name}\` in the issue`);
    }

    let phrase = 0;
    let option = 0;
    const seenPhrase = new Set<number>();
    for (const h of f.phrases) {
      if (seenPhrase.has(h.phrase)) continue;
      seenPhrase.add(h.phrase);
      const spread = ctx.phraseFiles[h.phrase] ?? 1;
      const kind = query.phraseKinds[h.phrase];
      if (kind === "option") option += 1 / spread;
      else phrase += 1 / spread;
      ev.push(`the file's ${phraseEvidence(query, h)}`);
    }

    const textProse = bm25(f.tf, ctx.proseKeys, ctx.idfs, f.lines, ctx.avgLines);
    const textIdent = bm25(f.tf, ctx.identKeys, ctx.idfs, f.lines, ctx.avgLines);
    let pathWords = 0;
    for (const [k] of f.pathTerms) pathWords += (ctx.allKeys.get(k) ?? 0) * (ctx.idfs.get(k) ?? 0);
    // Names used everywhere (a base class, a common helper) point nowhere: weighed by rarity.
    let mentions = 0;
    for (const [name, c] of f.ids) mentions += (ctx.identWeight.get(name) ?? 1) * (ctx.identIdf.get(name) ?? 0) * log1p(c);
    const matched = wordsOf(ctx, f.tf.keys());
    if (matched) ev.push(`${FILE_TERMS}${matched}`);
    const commit = ctx.commitFiles.get(f.path);
    if (commit) ev.push(`the file was changed by ${commit.commit}`);

    out.push({
      path: f.path,
      evidence: ev,
      features: {
        pathMention: pm ? pm.quality : 0,
        frameInner: inner,
        qualified: Math.min(2, pairs.length),
        frameFuncDefined,
        phrase: Math.min(2, phrase),
        option: Math.min(1, option),
        textProse,
        textIdent,
        pathWords,
        mentions,
        namedCommit: commit?.share ?? 0,
        vendored: VENDORED.test(f.path) || NESTED_PACKAGES.test(f.path) ? 1 : 0,
        outsidePackage: f.path.includes("/") && !ctx.packages.has(dirOf(f.path)) ? 1 : 0,
        size: log1p(f.lines) / 8,
      },
    });
  }
  normalize(out, ["textProse", "textIdent", "pathWords", "mentions"]);
  return out;
}

/** Divides each named feature by its maximum over the candidates (0 stays 0). */
export function normalize<F extends string>(cands: Candidate<F>[], names: F[]): void {
  for (const name of names) {
    const max = Math.max(0, ...cands.map((c) => c.features[name]));
    if (max > 0) for (const c of cands) c.features[name] /= max;
  }
}

/** Features of every function and method in the outlined files. */
export function functionFeatures(ctx: RankContext, files: OutlinedFile[]): FunctionCandidate[] {
  const { terms, query } = ctx;
  const named = new Set([...ctx.identWeight.keys()]);
  for (const f of terms.frames) if (f.func) named.add(f.func);
  const allDefs = files.flatMap((f) => f.defs);
  // Callee expansion: names called by the functions the issue or its traceback names.
  const calledBy = new Map<string, OutlinedDef>();
  for (const d of allDefs) {
    if (d.kind !== "def" || !named.has(d.name)) continue;
    for (const c of d.calls) if (!calledBy.has(c) && c !== d.name) calledBy.set(c, d);
  }
  // The repository file each of the issue's frames was matched to (the issue's own path is
  // untrusted text, and often not the repository's).
  const frameFile = new Map<IssueTerms["frames"][number], string>();
  for (const [path, m] of ctx.pathMatches) for (const fr of m.frames) frameFile.set(fr, path);
  const scanned = new Map(ctx.scan.files.map((f) => [f.path, f]));
  const avgDef = allDefs.length ? allDefs.reduce((s, d) => s + (d.end - d.start + 1), 0) / allDefs.length : 1;

  const out: FunctionCandidate[] = [];
  for (const file of files) {
    const classes = new Map(file.defs.filter((d) => d.kind === "class").map((d) => [d.cls ? `${d.cls}.${d.name}` : d.name, d]));
    const phraseLines = scanned.get(file.path)?.phrases ?? [];
    const frames = [...(ctx.pathMatches.get(file.path)?.frames ?? [])];
    const pointers = ctx.pathMatches.get(file.path)?.pointers ?? [];
    for (const d of file.defs) {
      if (d.kind !== "def") continue;
      const ev: string[] = [];
      const lines = d.end - d.start + 1;
      const w = ctx.identWeight.get(d.name) ?? 0;
      if (w) ev.push(`the issue names \`${d.name}\``);
      const qualified = d.cls !== null && terms.qualified.some(([a, b]) => b === d.name && d.cls!.split(".").pop() === a);
      if (qualified) ev.push(`the issue writes \`${d.cls!.split(".").pop()}.${d.name}\``);
      const classNamed = d.cls ? (ctx.identWeight.get(d.cls.split(".").pop()!) ?? 0) : 0;
      const cls = d.cls ? classes.get(d.cls) : undefined;
      const classWords = cls ? bm25(cls.nameTerms, ctx.allKeys, ctx.idfs, 1, 1) : 0;
      // An issue about what a class should accept or require is often fixed where it is built.
      const namedClassInit = d.name === "__init__" && (classNamed > 0 || classWords > 0) ? 1 : 0;
      // A frame in this very file, or (the file renamed since) a frame naming this function.
      const ownFrames = frames.filter((fr) => fr.func === d.name);
      const anyFrames = terms.frames.filter((fr) => fr.func === d.name);
      const frame = ownFrames.length ? 1 : anyFrames.length ? 0.5 : 0;
      const innermost = anyFrames.reduce<(typeof anyFrames)[number] | undefined>((a, b) => (a && a.depth >= b.depth ? a : b), undefined);
      const frameInner = innermost?.depth ?? 0;
      // A frame in another file only shares the name (or was this file before a rename): said so.
      if (ownFrames.length) ev.push(`traceback frame: ${file.path} in ${d.name}`);
      else if (innermost) ev.push(`a traceback frame in ${frameFile.get(innermost) ?? "a file this repository does not hold"} names \`${d.name}\``);
      // The reporter linked to its lines or pasted a diff of them.
      const pointer = pointers.find((p) => p.start <= d.end && p.end >= d.start);
      if (pointer) ev.push(`the issue ${pointer.how === "link" ? "links to" : "patches"} line ${pointer.start}${pointer.end > pointer.start ? `-${pointer.end}` : ""} of ${file.path}`);

      const commit = ctx.commitDefs.get(`${file.path}\0${d.name}`);
      // A commit's hunks are known by the name of the definition they sit in, not its class.
      const namesakes = commit ? file.defs.filter((x) => x.kind === "def" && x.name === d.name).length : 0;
      if (commit) ev.push(namesakes > 1 ? `the file's \`${d.name}\` (it defines ${namesakes}) was changed in ${commit}` : `changed in ${commit}`);

      let phrase = 0;
      let option = 0;
      for (const h of phraseLines) {
        if (h.line < d.start || h.line > d.end) continue;
        const spread = ctx.phraseFiles[h.phrase] ?? 1;
        if (query.phraseKinds[h.phrase] === "option") option = Math.max(option, 1 / spread);
        else phrase += 1 / spread;
        ev.push(phraseEvidence(query, h));
      }

      let mentions = 0;
      for (const [name, c] of d.ids) if (name !== d.name) mentions += (ctx.identWeight.get(name) ?? 1) * (ctx.identIdf.get(name) ?? 0) * log1p(c);
      const caller = calledBy.get(d.name);
      if (caller) {
        const line = caller.first ?? caller.start;
        const where = caller.file === file.path ? `line ${line}` : `${caller.file}:${line}`;
        ev.push(`called by \`${caller.cls ? `${caller.cls}.` : ""}${caller.name}\` (${where}), which the issue names`);
      }
      const callsNamed = d.calls.filter((c) => c !== d.name && named.has(c));
      if (callsNamed.length) ev.push(`calls \`${callsNamed[0]}\`, which the issue names`);

      const words = wordsOf(ctx, [...d.nameTerms.keys(), ...d.docTerms.keys(), ...d.argTerms.keys()], 6, file.forms);
      if (words) ev.push(`issue terms in its name, signature or docstring: ${words}`);
      else {
        // Chosen for what its body says (often the second look's reason): name those words.
        const inBody = wordsOf(ctx, d.bodyTerms.keys(), 4, file.forms);
        if (inBody) ev.push(`issue terms in its body: ${inBody}`);
      }
      out.push({
        def: d,
        evidence: ev,
        features: {
          nameExact: Math.min(1, w / 3),
          qualified: qualified ? 1 : 0,
          classNamed: Math.min(1, classNamed / 3),
          classWords,
          namedClassInit,
          frame,
          frameInner,
          pointed: pointer ? 1 : 0,
          namedCommit: commit ? 1 : 0,
          phrase: Math.min(2, phrase),
          option,
          nameWords: bm25(d.nameTerms, ctx.allKeys, ctx.idfs, 1, 1),
          argWords: bm25(d.argTerms, ctx.allKeys, ctx.idfs, 1, 1),
          docWords: bm25(d.docTerms, ctx.allKeys, ctx.idfs, 1, 1),
          bodyWords: bm25(d.bodyTerms, ctx.allKeys, ctx.idfs, lines, avgDef),
          titleWords: bm25(d.bodyTerms, ctx.titleKeys, ctx.idfs, lines, avgDef),
          mentions,
          calledByNamed: caller ? 1 : 0,
          callsNamed: Math.min(1, callsNamed.length),
          size: log1p(lines) / 5,
          dunder: /^__\w+__$/.test(d.name) ? 1 : 0,
          private: /^_[^_]/.test(d.name) ? 1 : 0,
          property: d.decorators.some((x) => x === "property" || x === "setter" || x === "cached_property") ? 1 : 0,
        },
      });
    }
  }
  // Per file: functions compete with their neighbours, and a file's best function keeps the
  // same scale whichever other files were outlined.
  for (const file of files) normalize(out.filter((c) => c.def.file === file.path), ["nameWords", "classWords", "argWords", "docWords", "bodyWords", "titleWords", "mentions"]);
  return out;
}
