import { emptyUsage, type Location, type NamedCommit, type Policy, type PolicyContext, type PolicyResult, type TrajectoryStep } from "./policy.js";
import { extractIssueTerms, type IssueTerms } from "./baseline/issueTerms.js";
import { clip, fileFeatures, functionFeatures, rankContext, spelledFileEvidence, type FileCandidate, type FunctionCandidate, type RankContext } from "./baseline/features.js";
import { choose, rank, type Scored, type Weights } from "./baseline/model.js";
import { outlineFiles, type OutlinedDef, type OutlinedFile } from "./baseline/outline.js";
import { buildQuery, type Query } from "./baseline/query.js";
import { CALIBRATION, calibrate, type Curve } from "./baseline/calibration.js";
import { rerank } from "./baseline/rerank.js";
import { scanRepository, type Exec, type ScanResult } from "./baseline/repoScan.js";
import { WEIGHTS } from "./baseline/weights.js";
import { MAX_ANSWERED_FILES } from "./baseline/namedFiles.js";

/**
 * A deterministic, model-free localizer. It reads the issue for terms (paths, traceback
 * frames, identifiers, quoted lines, commits and issue numbers, prose words), scans the
 * repository once inside the sandbox (and asks the host what the named commits changed),
 * ranks files with a linear model over field-weighted matches, outlines the best files in the
 * sandbox (Python's ast, or other languages' declaration lines), ranks those files again on their best definitions, ranks the
 * chosen files' functions the same way, and answers as localization_finish would, each
 * location with the evidence it was chosen on. It exists so the service localizes on a
 * machine with no GPU, and as the floor the model has to beat.
 */

/** Files outlined and ranked again on their definitions: the answer's files come from these. */
export const OUTLINE_FILES = 6;
/**
 * Files named in all, answered and alternatives: with the alternatives a gold file is among
 * those named for 82-87% of real issues, against 66-69% in the answer alone (BENCHMARKS.md,
 * "How sure the baseline is, and what it would read next").
 */
export const CANDIDATE_FILES = 5;
/** Alternatives less likely than this are left out: on the dev set none of them was right (same section). */
const MIN_ALTERNATIVE = 0.02;
const MAX_EVIDENCE = 5;

/** What the sandbox told us; everything after it is a pure function of this and the issue. */
export interface Gathered {
  query: Query;
  scan: ScanResult;
  outline: OutlinedFile[];
  /** What the commits the issue names changed, where the host has the history (absent in older dumps). */
  commits?: NamedCommit[];
}

export interface Decision {
  locations: Location[];
  /** The next files, not answered, each with its best definition. */
  alternatives: Location[];
  files: Scored<FileCandidate>[];
  functions: Scored<FunctionCandidate>[];
}

export class BaselinePolicy implements Policy {
  readonly name = "baseline" as const;
  readonly usesShell = false;

  constructor(private readonly weights: Weights = WEIGHTS) {}

  async run(ctx: PolicyContext): Promise<PolicyResult> {
    const usage = emptyUsage();
    const trajectory: TrajectoryStep[] = [];
    let turn = 0;
    const exec: Exec = async (argv, options) => {
      // Given up (cancelled, timed out): the next step is not started.
      ctx.signal?.throwIfAborted();
      turn++;
      // What it does, not where: the sandbox's directory means nothing to the caller reading the progress.
      const label = `python3 ${turn === 1 ? "<repository scan>" : "<outline>"}`;
      ctx.onEvent({ type: "command", turn, maxTurns: 0, command: label });
      const t = performance.now();
      const result = await ctx.exec(argv, options);
      const durationMs = performance.now() - t;
      usage.toolMs += durationMs;
      trajectory.push({ at: new Date().toISOString(), kind: "tool", turn, name: "sandbox_exec", command: label, exit_code: result.exitCode, output_bytes: result.stdout.length, durationMs: Math.round(durationMs) });
      return result;
    };

    const terms = extractIssueTerms(ctx.issue);
    trajectory.push({ at: new Date().toISOString(), kind: "request", terms: summarize(terms) });
    const gathered = await gather(exec, ctx.workingDir, terms, this.weights, OUTLINE_FILES, ctx.namedCommits?.bind(ctx));
    if (gathered.commits?.length) {
      trajectory.push({
        at: new Date().toISOString(),
        kind: "tool",
        name: "named_commits",
        commits: gathered.commits.map((c) => ({ ref: c.ref, sha: c.sha, files: c.files.slice(0, 10), defs: c.defs.length })),
      });
    }
    const decision = decide(terms, gathered, this.weights);
    trajectory.push({
      at: new Date().toISOString(),
      kind: "tool",
      turn: turn + 1,
      name: "localization_finish",
      arguments: JSON.stringify({ locations: decision.locations }),
      ranked_files: decision.files.slice(0, 5).map((f) => ({ file: f.item.path, score: round(f.score), p: round(f.p) })),
    });
    const { listed, cut, paths, unread } = gathered.scan;
    // A tree past what the scan reads (a monorepo): the answer is of the files read, and says so.
    const notes = listed > paths.length ? [`read ${paths.length.toLocaleString("en")} of the tree's ${cut ? "more than " : ""}${listed.toLocaleString("en")} source files, those whose paths hold the issue's words first: give options.scope (a directory of the repository) to read all of one part`] : [];
    // A monorepo's parts in other languages: the calling agent learns the answer did not look there.
    const others = Object.entries(unread).map(([lang, files]) => `${LANGUAGE_NAMES[lang] ?? lang} (${files.toLocaleString("en")} files)`);
    if (others.length) notes.push(`read the tree's source in its main language only; it also holds ${others.join(", ")}, not read: a stack trace through their files, or options.scope (their directory), has them read`);
    return { policy: "baseline", locations: decision.locations, alternatives: decision.alternatives, finishReason: "finish_tool", turns: turn, usage, trajectory, ...(notes.length ? { notes } : {}) };
  }
}

/** The scan's language families, as an answer's note names them. */
const LANGUAGE_NAMES: Readonly<Record<string, string>> = { py: "Python", js: "JavaScript/TypeScript", go: "Go", rust: "Rust", jvm: "Java/Kotlin/Scala", ruby: "Ruby", php: "PHP", c: "C/C++", cs: "C#", swift: "Swift" };

/**
 * The sandbox work: one scan of the repository (beside it, on the host, what the commits the
 * issue names changed), then an outline of the best files (Python's ast; other languages read from their lines).
 */
export async function gather(
  exec: Exec,
  root: string,
  terms: IssueTerms,
  weights: Weights,
  outlineCount: number,
  namedCommits?: (refs: string[]) => Promise<NamedCommit[]>,
): Promise<Gathered> {
  const query = buildQuery(terms);
  const [scan, commits] = await Promise.all([
    scanRepository(exec, root, query),
    namedCommits && terms.commits.length ? namedCommits(terms.commits) : Promise.resolve([]),
  ]);
  const files = firstRanking(rankContext(terms, query, scan, commits), weights.file);
  const outline = await outlineFiles(exec, root, files.slice(0, outlineCount).map((f) => f.item.path), query);
  return { query, scan, outline, commits };
}

/** Chooses files, then functions in them, and says why. */
export function decide(terms: IssueTerms, g: Gathered, weights: Weights): Decision {
  return pick(rankFiles(terms, g, weights), g, weights);
}

/** The issue's context and every file ranked: all that does not depend on how many to answer. */
export interface RankedFiles {
  ctx: RankContext;
  files: Scored<FileCandidate>[];
}

export function rankFiles(terms: IssueTerms, g: Gathered, weights: Weights): RankedFiles {
  const ctx = rankContext(terms, g.query, g.scan, g.commits);
  return { ctx, files: rerank(ctx, firstRanking(ctx, weights.file), g.outline, OUTLINE_FILES, weights.rerank) };
}

/** Every scanned file by the first model: which files to outline, and the second look's first feature. */
export function firstRanking(ctx: RankContext, fileWeights: Weights["file"]): Scored<FileCandidate>[] {
  return rank(fileFeatures(ctx), fileWeights, (c) => c.path);
}

/**
 * How many files, and which functions in them, each with how sure the rankers are of it:
 * split from ranking so offline fitting can vary it cheaply.
 */
export function pick({ ctx, files }: RankedFiles, g: Gathered, weights: Weights): Decision {
  const chosen = choose(files, weights.fileRatio, weights.maxFiles);
  const outlined = new Map(g.outline.map((f) => [f.path, f]));
  const functions = rankFunctions(ctx, chosen, outlined, weights);
  const locations: Location[] = [];
  for (const file of chosen) {
    const inFile = functions.filter((f) => f.item.def.file === file.item.path);
    const picked = choose(inFile, weights.fnRatio, weights.maxFunctionsPerFile);
    const fileConfidence = sure(file.p, CALIBRATION.file);
    const fileEvidence = spelledFileEvidence(ctx, file.item.path, file.item.evidence, outlined.get(file.item.path)?.forms);
    if (picked.length === 0) {
      locations.push({ file: file.item.path, evidence: cap(fileEvidence), confidence: { file: fileConfidence } });
      continue;
    }
    for (const fn of picked) {
      const d = fn.item.def;
      locations.push({
        file: d.file,
        ...(d.cls ? { class_name: d.cls } : {}),
        function_name: d.name,
        ...span(d),
        evidence: cap(withFileEvidence(fn.item.evidence, fileEvidence)),
        confidence: { file: fileConfidence, function: sure(fn.p, CALIBRATION.function) },
      });
    }
  }
  // Files the issue names that the ranking never reads (not source code), ahead of what it ranked.
  const named: Location[] = g.scan.named
    .slice(0, MAX_ANSWERED_FILES)
    .filter((file) => !locations.some((l) => l.file === file))
    .map((file) => ({ file, evidence: ["the issue names this file (not source code, which the ranking does not read)"], confidence: { file: NAMED_FILE_CONFIDENCE } }));
  return { locations: [...named, ...locations], alternatives: alternatives(ctx, files, chosen, outlined, weights), files, functions };
}

/** How sure a named file that is not source is: not calibrated (no set holds enough of them to fit), an even chance said as one. */
const NAMED_FILE_CONFIDENCE = 0.5;

/**
 * The files ranked after the chosen ones, up to CANDIDATE_FILES in all, each with its best
 * definition (ranked among these files' own, so it says where to start reading, and carries no
 * confidence of its own).
 */
function alternatives(
  ctx: RankContext,
  files: Scored<FileCandidate>[],
  chosen: Scored<FileCandidate>[],
  outlined: Map<string, OutlinedFile>,
  weights: Weights,
): Location[] {
  const rest = files.filter((f) => !chosen.includes(f)).slice(0, Math.max(0, CANDIDATE_FILES - chosen.length));
  const functions = rankFunctions(ctx, rest, outlined, weights);
  return rest.flatMap((file) => {
    const confidence = sure(file.p, CALIBRATION.file);
    if (confidence < MIN_ALTERNATIVE) return [];
    const best = functions.find((f) => f.item.def.file === file.item.path)?.item;
    return {
      file: file.item.path,
      ...(best?.def.cls ? { class_name: best.def.cls } : {}),
      ...(best ? { function_name: best.def.name, ...span(best.def) } : {}),
      evidence: cap(withFileEvidence(best?.evidence ?? [], spelledFileEvidence(ctx, file.item.path, file.item.evidence, outlined.get(file.item.path)?.forms))),
      confidence: { file: confidence },
    };
  });
}

/** The definitions of these files (those outlined), ranked together by the function model. */
function rankFunctions(ctx: RankContext, files: Scored<FileCandidate>[], outlined: Map<string, OutlinedFile>, weights: Weights): Scored<FunctionCandidate>[] {
  return rank(
    functionFeatures(ctx, files.map((f) => outlined.get(f.item.path)).filter((f): f is OutlinedFile => !!f)),
    weights.fn,
    (c) => `${c.def.file}:${c.def.start}`,
  );
}

/** The outline's span of a definition, which spares the check of the answer parsing its file again. */
function span(d: OutlinedDef): Pick<Location, "start_line" | "end_line"> {
  return { start_line: d.first ?? d.start, end_line: d.end };
}

/**
 * A function's evidence, then its file's, less what the function's already says: the same
 * quoted text (the file's first line holding it), the same commit (as the file's change).
 */
function withFileEvidence(fn: string[], file: string[]): string[] {
  const said = new Set(fn.map((e) => e.replace(/^.*?(holds the |changed in )/, "$1")));
  const repeats = (e: string) => said.has(e.replace(/^the file's line \d+ (holds the )/, "$1").replace(/^the file was changed by /, "changed in "));
  return [...fn, ...file.filter((e) => !repeats(e))];
}

function cap(evidence: string[]): string[] {
  return [...new Set(evidence)].slice(0, MAX_EVIDENCE).map((e) => clip(e, 200));
}

const round = (x: number) => Math.round(x * 1000) / 1000;
/** A calibrated probability, to two places: what a location shows. */
const sure = (p: number, curve: Curve) => Math.round(calibrate(p, curve) * 100) / 100;

function summarize(terms: IssueTerms) {
  return {
    paths: terms.paths.slice(0, 10),
    frames: terms.frames.slice(0, 10),
    pointers: terms.pointers.slice(0, 10),
    commits: terms.commits,
    identifiers: terms.identifiers.slice(0, 16),
    phrases: terms.phrases.slice(0, 6),
    words: terms.words.slice(0, 16),
  };
}
