import { createHash } from "node:crypto";
import { normalScope, type LocalizePayload } from "./contract.js";

/**
 * The identity of a result: the same service version, repository at the same resolved commit,
 * issue text, model and options give the same answer (up to sampling),
 * so a repeated request can be answered from the cache.
 */
export function resultCacheKey(input: {
  url: string;
  sha: string;
  patch?: string;
  /** An uploaded tree's history as its caller sent it: the same tree with other history can answer otherwise. */
  commits?: LocalizePayload["commits"];
  issue: string;
  options: LocalizePayload["options"];
  model: string;
  /** The answerer (ANSWER_REVISION: the service's version and the baseline's fit): another may answer otherwise, or with more. */
  service: string;
}): string {
  const o = input.options;
  const scope = normalScope(o.scope);
  const identity = {
    // What an older service or fit cached is not this one's answer: each may answer otherwise, or with more.
    service: input.service,
    url: input.url,
    sha: input.sha,
    patch: input.patch ?? null,
    // Absent rather than null, so the keys of results cached before this field stay the same.
    ...(input.commits?.length ? { commits: createHash("sha256").update(JSON.stringify(input.commits)).digest("hex") } : {}),
    issue: createHash("sha256").update(input.issue).digest("hex"),
    policy: o.policy ?? null,
    model: o.policy === "baseline" ? null : input.model,
    max_turns: o.max_turns ?? null,
    temperature: o.temperature ?? null,
    finish_policy: o.finish_policy ?? null,
    snippets: o.snippets ?? false,
    // Absent unless false, so the keys of results cached before this field stay the same.
    ...(o.alternatives === false ? { alternatives: false } : {}),
    // The same directory however it was written (`pkg`, `pkg/`); absent for the whole tree, as before.
    ...(scope ? { scope } : {}),
  };
  return createHash("sha256").update(JSON.stringify(identity)).digest("hex");
}
