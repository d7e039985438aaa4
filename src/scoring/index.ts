/**
 * Localization scoring in the CodeScout/LocAgent convention (see codescout-protocol.md,
 * "Scoring"). Pure functions: no I/O, so the eval CLI, the API and tests share one
 * definition of F1.
 */

export interface ScoredLocation {
  file: string;
  class_name?: string | null;
  function_name?: string | null;
}

export type Level = "file" | "module" | "entity";
export const LEVELS: readonly Level[] = ["file", "module", "entity"];

export interface LocationSets {
  files: string[];
  modules: string[];
  entities: string[];
}

export interface LevelScore {
  precision: number;
  recall: number;
  f1: number;
}

export type InstanceScores = Record<Level, LevelScore>;

const clean = (s: string | null | undefined): string => (typeof s === "string" ? s.trim() : "");

/**
 * Turns a list of locations into the three sets the protocol scores. A class without a
 * function names a module but no entity (adding a method to a class); a bare function is
 * its own module and entity; a file alone counts only at file level.
 */
export function locationSets(locations: readonly ScoredLocation[]): LocationSets {
  const files = new Set<string>();
  const modules = new Set<string>();
  const entities = new Set<string>();
  for (const loc of locations) {
    const file = clean(loc.file);
    if (!file) continue;
    files.add(file);
    const cls = clean(loc.class_name);
    const fn = clean(loc.function_name);
    if (cls) modules.add(`${file}:${cls}`);
    else if (fn) modules.add(`${file}:${fn}`);
    if (fn) entities.add(cls ? `${file}:${cls}.${fn}` : `${file}:${fn}`);
  }
  return { files: [...files], modules: [...modules], entities: [...entities] };
}

/** Set precision/recall/F1; empty ground truth or empty prediction scores 0 (protocol rule). */
export function setScore(predicted: Iterable<string>, truth: Iterable<string>): LevelScore {
  const pred = new Set(predicted);
  const gt = new Set(truth);
  if (pred.size === 0 || gt.size === 0) return { precision: 0, recall: 0, f1: 0 };
  let tp = 0;
  for (const p of pred) if (gt.has(p)) tp++;
  const precision = tp / pred.size;
  const recall = tp / gt.size;
  const f1 = tp === 0 ? 0 : (2 * precision * recall) / (precision + recall);
  return { precision, recall, f1 };
}

const ZERO: LevelScore = Object.freeze({ precision: 0, recall: 0, f1: 0 });

/**
 * Scores one instance; `null` (no answer) scores 0 at every level. So does an answer with
 * any location whose file is empty: CodeScout's own reward voids the whole answer then, and
 * the model card's F1 was measured that way.
 */
export function scoreInstance(prediction: readonly ScoredLocation[] | null, truth: LocationSets): InstanceScores {
  if (prediction === null || prediction.some((l) => !clean(l.file))) return { file: { ...ZERO }, module: { ...ZERO }, entity: { ...ZERO } };
  const sets = locationSets(prediction);
  return {
    file: setScore(sets.files, truth.files),
    module: setScore(sets.modules, truth.modules),
    entity: setScore(sets.entities, truth.entities),
  };
}

export interface AggregateScores {
  instances: number;
  /** Instances that produced an answer (even an empty one). */
  answered: number;
  levels: Record<Level, LevelScore>;
}

/**
 * Means over ALL instances, the way the field reports them: an instance without an answer
 * (or that failed) contributes zeros rather than being left out.
 */
export function aggregate(rows: readonly { scores: InstanceScores | null; answered: boolean }[]): AggregateScores {
  const sums: Record<Level, LevelScore> = {
    file: { ...ZERO },
    module: { ...ZERO },
    entity: { ...ZERO },
  };
  let answered = 0;
  for (const row of rows) {
    if (row.answered) answered++;
    if (!row.scores) continue;
    for (const level of LEVELS) {
      sums[level].precision += row.scores[level].precision;
      sums[level].recall += row.scores[level].recall;
      sums[level].f1 += row.scores[level].f1;
    }
  }
  const n = rows.length;
  const mean = (s: LevelScore): LevelScore =>
    n === 0 ? { ...ZERO } : { precision: s.precision / n, recall: s.recall / n, f1: s.f1 / n };
  return {
    instances: n,
    answered,
    levels: { file: mean(sums.file), module: mean(sums.module), entity: mean(sums.entity) },
  };
}
