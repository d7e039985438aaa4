import { availableParallelism } from "node:os";
import type { Config } from "../config/env.js";
import { CODESCOUT_DEFAULTS, CodeScoutPolicy } from "../agent/codescout/loop.js";
import { ModelClient, type ModelClientOptions } from "../agent/codescout/modelClient.js";
import { loadPromptPack } from "../agent/codescout/prompts.js";
import { WithFallback } from "../agent/fallback.js";
import { RankingSlots, WithLeads } from "../agent/leads.js";
import type { Policy } from "../agent/policy.js";
import type { LocalizePayload } from "../queue/contract.js";
import { JobFailedError } from "../queue/failure.js";

/**
 * Chooses a policy per job. The model loop needs a model server; without one the baseline
 * is the default, so the service localizes on a machine with no GPU. With one, the model's
 * answer gets the baseline's next files beside it (MODEL_ALTERNATIVES), unless the request
 * asks for none.
 */
export function createPolicySelector(config: Config, baseline: () => Policy, cores = availableParallelism(), onModelAttempt?: ModelClientOptions["onAttempt"]) {
  const prompts = loadPromptPack(config.PROMPT_PACK_DIR);
  const client = config.MODEL_BASE_URL
    ? new ModelClient({
        baseURL: config.MODEL_BASE_URL,
        apiKey: config.MODEL_API_KEY,
        model: config.MODEL_NAME,
        timeoutMs: config.MODEL_TIMEOUT_MS,
        maxRetries: config.MODEL_MAX_RETRIES,
        ...(onModelAttempt ? { onAttempt: onModelAttempt } : {}),
      })
    : null;
  // Half the cores: the other half stays with the episodes' tool calls.
  const rankings = new RankingSlots(Math.max(1, Math.floor(cores / 2)));

  return (options: LocalizePayload["options"], chosenBy: LocalizePayload["policyChosenBy"] = "request"): Policy => {
    const name = options.policy ?? (client ? "codescout" : "baseline");
    if (name === "baseline") return baseline();
    if (!client) throw new JobFailedError("llm_unavailable", "policy codescout needs a model server (MODEL_BASE_URL is not set)");
    const model = new CodeScoutPolicy({
      ...CODESCOUT_DEFAULTS,
      client,
      prompts,
      maxTurns: options.max_turns ?? config.MAX_TURNS,
      temperature: options.temperature ?? CODESCOUT_DEFAULTS.temperature,
      finishPolicy: options.finish_policy ?? CODESCOUT_DEFAULTS.finishPolicy,
    });
    const answered = config.MODEL_ALTERNATIVES && options.alternatives !== false ? new WithLeads(model, baseline(), rankings) : model;
    // Only where the model was the service's choice: a request that names it asked for it.
    return config.MODEL_FALLBACK === "baseline" && chosenBy === "service" ? new WithFallback(answered, baseline()) : answered;
  };
}
