import OpenAI from "openai";
import type { ChatCompletion, ChatCompletionCreateParamsNonStreaming } from "openai/resources/chat/completions";
import type { PolicyUsage } from "../policy.js";

/**
 * The model server as the loop sees it: one non-streaming chat completion at a time.
 * Retries with exponential backoff and jitter (and Retry-After) are openai-node's own;
 * what is left after them becomes a ModelError whose reason the worker reports.
 */

export type ModelErrorReason = "llm_unavailable" | "llm_timeout" | "llm_bad_request" | "context_length" | "cancelled";

export class ModelError extends Error {
  override name = "ModelError";
  constructor(
    readonly reason: ModelErrorReason,
    message: string,
    options?: { cause?: unknown; usage?: PolicyUsage },
  ) {
    super(message, options);
    this.usage = options?.usage;
  }

  /** What the policy had spent when the model server failed it, the failed request included (the loop sets it). */
  readonly usage: PolicyUsage | undefined;

  withUsage(usage: PolicyUsage): ModelError {
    return new ModelError(this.reason, this.message, { cause: this.cause, usage: { ...usage } });
  }
}

export interface ModelClientOptions {
  baseURL: string;
  apiKey?: string;
  model: string;
  timeoutMs: number;
  maxRetries: number;
}

/** Sent on every request as CodeScout was served in training and evaluation. */
export interface ChatRequest extends Omit<ChatCompletionCreateParamsNonStreaming, "model"> {
  chat_template_kwargs?: { enable_thinking: boolean };
}

export interface ChatResponse {
  completion: ChatCompletion;
  durationMs: number;
}

const CONTEXT_RE = /context length|maximum context|too many tokens|prompt is too long|max_model_len|input tokens/i;

export class ModelClient {
  private readonly client: OpenAI;

  constructor(readonly options: ModelClientOptions) {
    this.client = new OpenAI({
      baseURL: options.baseURL,
      // vLLM accepts any key when none is configured; the SDK insists on one.
      apiKey: options.apiKey ?? "unused",
      timeout: options.timeoutMs,
      maxRetries: options.maxRetries,
    });
  }

  get model(): string {
    return this.options.model;
  }

  async complete(request: ChatRequest, signal?: AbortSignal): Promise<ChatResponse> {
    const started = performance.now();
    try {
      const completion = await this.client.chat.completions.create(
        { ...request, model: this.options.model, stream: false } as ChatCompletionCreateParamsNonStreaming,
        { signal },
      );
      return { completion, durationMs: performance.now() - started };
    } catch (err) {
      throw toModelError(err, signal);
    }
  }
}

export function toModelError(err: unknown, signal?: AbortSignal): ModelError {
  if (err instanceof ModelError) return err;
  if (signal?.aborted || err instanceof OpenAI.APIUserAbortError) return new ModelError("cancelled", "the model request was aborted", { cause: err });
  if (err instanceof OpenAI.APIConnectionTimeoutError) return new ModelError("llm_timeout", "the model server did not answer in time", { cause: err });
  if (err instanceof OpenAI.APIConnectionError) return new ModelError("llm_unavailable", `cannot reach the model server: ${err.message}`, { cause: err });
  if (err instanceof OpenAI.APIError) {
    const status = err.status ?? 0;
    if (status === 400 && CONTEXT_RE.test(err.message)) return new ModelError("context_length", err.message, { cause: err });
    if (status === 429 || status >= 500) return new ModelError("llm_unavailable", `model server answered ${status} after retries: ${err.message}`, { cause: err });
    return new ModelError("llm_bad_request", `model server refused the request (${status}): ${err.message}`, { cause: err });
  }
  return new ModelError("llm_unavailable", `model request failed: ${(err as Error)?.message ?? String(err)}`, { cause: err });
}
