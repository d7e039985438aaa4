import { bm25 } from "./bm25.js";
import { normalize, type FileCandidate, type RankContext, type RerankFeature } from "./features.js";
import { rank, type Scored } from "./model.js";
import type { OutlinedFile } from "./outline.js";

/**
 * The second look at the best files: once their definitions are outlined, a file whose one
 * function or class matches the issue (in its name, docstring or body, or the title's words
 * in its body), or holds a line the issue links to, is a better answer than a file where the
 * same words are spread thin (a link to a file's top or past its end points at no code). The
 * first-pass score is one feature among these, so the files are re-ranked by a second linear
 * model, fitted like the first.
 */

export interface RerankCandidate {
  file: Scored<FileCandidate>;
  features: Record<RerankFeature, number>;
  /** The file's own evidence stays with it; the functions chosen in it say the rest. */
  evidence: never[];
}

/**
 * Features of the first `k` ranked files that were outlined; files past `k` or without an
 * outline are not candidates (they cannot be answered: their functions are unknown).
 * Definition scores are each file's best definition, divided by the best over the files.
 */
export function rerankFeatures(ctx: RankContext, ranked: Scored<FileCandidate>[], outline: OutlinedFile[], k: number): RerankCandidate[] {
  const outlined = new Map(outline.map((f) => [f.path, f]));
  const top = ranked.slice(0, k).filter((f) => outlined.has(f.item.path));
  const allDefs = top.flatMap((f) => outlined.get(f.item.path)!.defs);
  const avgDef = allDefs.length ? allDefs.reduce((s, d) => s + (d.end - d.start + 1), 0) / allDefs.length : 1;
  const best = top[0]?.score ?? 0;
  const out = top.map((file) => {
    const f = { first: file.score - best, defName: 0, defArgs: 0, defDoc: 0, defBody: 0, defTitle: 0, defNamed: 0, defPointed: 0 };
    const pointers = ctx.pathMatches.get(file.item.path)?.pointers ?? [];
    for (const d of outlined.get(file.item.path)!.defs) {
      if (pointers.some((p) => p.start <= d.end && p.end >= d.start)) f.defPointed = 1;
      f.defName = Math.max(f.defName, bm25(d.nameTerms, ctx.allKeys, ctx.idfs, 1, 1));
      f.defArgs = Math.max(f.defArgs, bm25(d.argTerms, ctx.allKeys, ctx.idfs, 1, 1));
      f.defDoc = Math.max(f.defDoc, bm25(d.docTerms, ctx.allKeys, ctx.idfs, 1, 1));
      // A class's body is all its methods: only a function's body says the words gather.
      if (d.kind === "def") {
        const lines = d.end - d.start + 1;
        f.defBody = Math.max(f.defBody, bm25(d.bodyTerms, ctx.allKeys, ctx.idfs, lines, avgDef));
        f.defTitle = Math.max(f.defTitle, bm25(d.bodyTerms, ctx.titleKeys, ctx.idfs, lines, avgDef));
      }
      f.defNamed = Math.max(f.defNamed, Math.min(1, (ctx.identWeight.get(d.name) ?? 0) / 3));
    }
    return { file, features: f, evidence: [] };
  });
  normalize(out, ["defName", "defArgs", "defDoc", "defBody", "defTitle"]);
  return out;
}

/** The outlined files re-ranked by the second model. */
export function rerank(ctx: RankContext, ranked: Scored<FileCandidate>[], outline: OutlinedFile[], k: number, weights: Record<RerankFeature, number>): Scored<FileCandidate>[] {
  const cands = rerankFeatures(ctx, ranked, outline, k);
  if (cands.length === 0) return ranked;
  return rank(cands, weights, (c) => c.file.item.path).map((r) => ({ item: r.item.file.item, score: r.score, p: r.p }));
}
