import { createHash } from "node:crypto";
import { API_VERSION } from "../version.js";
import type { LocalizePayload } from "./contract.js";

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
  /** The service version that answers; this one's unless told. */
  service?: string;
}): string {
  const o = input.options;
  const identity = {
    // A newer service may answer otherwise, or with more (0.3.0: confidence and alternatives):
    // what an older one cached is not its answer.
    service: input.service ?? API_VERSION,
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
  };
  return createHash("sha256").update(JSON.stringify(identity)).digest("hex");
}
