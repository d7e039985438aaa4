import OpenAI from "openai";
import type { ChatCompletion, ChatCompletionCreateParamsNonStreaming } from "openai/resources/chat/completions";
import { z } from "zod";
import type { PolicyUsage } from "../policy.js";

/**
 * The model server as the loop sees it: one non-streaming chat completion at a time, through
 * openai-node. Everything the server sends is untrusted: a reply is read whole within the
 * request's time and size, and must be a chat completion; what is left after our retries
 * becomes a ModelError whose reason the worker reports.
 *
 * The retries are ours, not the SDK's: its wait for a Retry-After has no cap and cannot be
 * interrupted (a 503 saying `Retry-After: 3600` held the job past its timeout, a cancel and
 * the worker's shutdown), and its timer stops at the response's headers (a server that then
 * sends one byte a second was never timed out).
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
  /** One request's time, its whole reply read. */
  timeoutMs: number;
  maxRetries: number;
  /** Told of every attempt: its outcome (ok, or the failure's reason) and how long it took (the worker's metrics). */
  onAttempt?: (outcome: "ok" | ModelErrorReason, seconds: number) => void;
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

/**
 * A reply larger than this is no model's: CodeScout-4B's whole window (40,960 tokens) is about
 * 160 KB of text. A broken server's 20 MB reply would otherwise be sent back to it on every turn.
 */
export const MAX_REPLY_BYTES = 4 << 20;
/** The longest wait between two attempts, whatever Retry-After asks. */
export const MAX_RETRY_WAIT_MS = 30_000;
/** How much of a server's error text a failure carries (an HTML error page is megabytes). */
const ERROR_TEXT_CHARS = 300;

/** Token counts as the loop adds them up: a count that is not one (negative, a string, 1e300) is 0. */
const count = z.unknown().transform((v) => (typeof v === "number" && Number.isSafeInteger(v) && v >= 0 ? v : 0));

/** What the loop reads of a chat completion. Lenient where servers differ harmlessly (a tool call without `type`, arguments as an object). */
const replySchema = z.looseObject({
  choices: z
    .array(
      z.looseObject({
        message: z.looseObject({
          content: z.string().nullish(),
          tool_calls: z
            .array(
              z.looseObject({
                id: z.string().default(""),
                type: z.literal("function").default("function"),
                function: z.looseObject({
                  name: z.string(),
                  arguments: z.union([z.string(), z.record(z.string(), z.unknown())]).transform((a) => (typeof a === "string" ? a : JSON.stringify(a))),
                }),
              }),
            )
            .nullish(),
        }),
        finish_reason: z.string().nullish(),
      }),
    )
    .min(1),
  usage: z.looseObject({ prompt_tokens: count, completion_tokens: count }).nullish(),
});

/** A reply refused as no chat completion; `again`: whether another attempt may get a good one (a garbled reply may; a redirect will not). */
class ReplyRefused extends Error {
  override name = "ReplyRefused";
  constructor(
    message: string,
    readonly again = true,
  ) {
    super(message);
  }
}

export class ModelClient {
  private readonly client: OpenAI;

  constructor(readonly options: ModelClientOptions) {
    this.client = new OpenAI({
      baseURL: options.baseURL,
      // vLLM accepts any key when none is configured; the SDK insists on one.
      apiKey: options.apiKey ?? "unused",
      timeout: options.timeoutMs,
      maxRetries: 0,
      fetch: readWhole,
    });
  }

  get model(): string {
    return this.options.model;
  }

  /**
   * One completion, retried on what a retry may mend (the server away, overloaded, slow, or its
   * reply garbled). `deadlineAt` (performance.now()'s clock) is when the model's time ends: no
   * request outlasts it, and no retry starts that could not, so whatever answers after it (the
   * baseline) still has its time.
   */
  async complete(request: ChatRequest, signal?: AbortSignal, deadlineAt = Infinity): Promise<ChatResponse> {
    const started = performance.now();
    for (let attempt = 0; ; attempt++) {
      const left = deadlineAt - performance.now();
      if (left <= 0) throw new ModelError("llm_timeout", "the model server did not answer within the job's time for the model");
      // The SDK adds a listener to the signal it is given and never removes it: given the job's,
      // a job's dozen requests pass Node's listener limit. Each request has one of its own.
      const own = new AbortController();
      const forward = () => own.abort(signal?.reason);
      const attemptStarted = performance.now();
      const took = () => (performance.now() - attemptStarted) / 1000;
      if (signal?.aborted) forward();
      else signal?.addEventListener("abort", forward, { once: true });
      try {
        const completion = await this.client.chat.completions
          .create({ ...request, model: this.options.model, stream: false } as ChatCompletionCreateParamsNonStreaming, {
            signal: own.signal,
            timeout: Math.max(1, Math.floor(Math.min(this.options.timeoutMs, left))),
          })
          .catch((err: unknown) => {
            // The SDK's JSON.parse of a 200 that is not JSON (a proxy's HTML page).
            throw err instanceof SyntaxError ? new ReplyRefused("the model server's reply is not a chat completion (not JSON)") : err;
          });
        const reply = replySchema.safeParse(completion);
        if (!reply.success) {
          const where = reply.error.issues[0]?.path.join(".") || "the reply";
          throw new ReplyRefused(`the model server's reply is not a chat completion (${where}: ${reply.error.issues[0]?.message ?? "malformed"})`);
        }
        this.options.onAttempt?.("ok", took());
        return { completion: reply.data as unknown as ChatCompletion, durationMs: performance.now() - started };
      } catch (err) {
        const failure = toModelError(err, signal, this.options.apiKey);
        this.options.onAttempt?.(failure.reason, took());
        if (attempt >= this.options.maxRetries || !retried(err, failure)) throw failure;
        const wait = Math.min(retryAfterMs(err) ?? backoffMs(attempt), MAX_RETRY_WAIT_MS);
        // A wait that would end past the model's time is no retry: the failure stands now.
        if (wait >= deadlineAt - performance.now()) throw failure;
        await sleep(wait, signal).catch(() => {
          throw new ModelError("cancelled", "the model request was aborted", { cause: err });
        });
      } finally {
        signal?.removeEventListener("abort", forward);
      }
    }
  }
}

/** What a later attempt may mend: the server away, overloaded or slow, or a reply that was not one. */
function retried(err: unknown, failure: ModelError): boolean {
  if (failure.reason === "cancelled") return false;
  const refused = err instanceof ReplyRefused ? err : err instanceof OpenAI.APIConnectionError && err.cause instanceof ReplyRefused ? err.cause : null;
  if (refused) return refused.again;
  if (err instanceof OpenAI.APIConnectionError) return true;
  if (err instanceof OpenAI.APIError) {
    const status = err.status ?? 0;
    return status === 408 || status === 409 || status === 429 || status >= 500;
  }
  return false;
}

/** The server's own wait (retry-after-ms, or Retry-After in seconds or as a date), if it gave one. */
function retryAfterMs(err: unknown): number | undefined {
  const headers = err instanceof OpenAI.APIError ? err.headers : undefined;
  if (!headers) return undefined;
  const ms = Number(headers.get("retry-after-ms"));
  if (Number.isFinite(ms) && ms >= 0 && headers.get("retry-after-ms") !== null) return ms;
  const after = headers.get("retry-after");
  if (after === null) return undefined;
  const seconds = Number(after);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const at = Date.parse(after);
  return Number.isFinite(at) ? Math.max(0, at - Date.now()) : undefined;
}

/** 0.5 s, doubling to 8 s, less up to a quarter at random: as openai-node waits. */
function backoffMs(attempt: number): number {
  return Math.min(8_000, 500 * 2 ** attempt) * (1 - Math.random() * 0.25);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", stop);
      resolve();
    }, ms);
    const stop = () => {
      clearTimeout(timer);
      reject(signal!.reason as Error);
    };
    signal?.addEventListener("abort", stop, { once: true });
  });
}

/**
 * fetch for openai-node: the reply read whole before the SDK sees it, so the SDK's timer (which
 * stops at the headers it is given) covers the body too, and a reply over MAX_REPLY_BYTES is
 * refused. A redirect is not followed (the conversation, the tree's code included, would be
 * posted wherever it points). vLLM before 0.10.1 writes an error flat ({"message", "type",
 * "code"}), where the SDK reads only `error`: it is nested, so a context overflow is known as one.
 */
async function readWhole(url: string | URL | Request, init?: RequestInit): Promise<Response> {
  const res = await fetch(url, { ...init, redirect: "manual" });
  if (res.status >= 300 && res.status < 400) {
    await res.body?.cancel().catch(() => undefined);
    throw new ReplyRefused(`the model server redirected the request (${res.status}): set MODEL_BASE_URL to the address it answers on`, false);
  }
  const whole = await readCapped(res, MAX_REPLY_BYTES);
  if (!whole) throw new ReplyRefused(`the model server's reply is over ${MAX_REPLY_BYTES >> 20} MiB`, false);
  // A 204 or 205 takes no body at all, not even an empty one (the Response constructor throws).
  const body = res.status === 204 || res.status === 205 ? null : res.ok ? new Uint8Array(whole) : nestedError(whole.toString("utf8"));
  const headers = new Headers(res.headers);
  // The body is decoded and whole now: its transfer headers no longer describe it.
  for (const h of ["content-encoding", "content-length", "transfer-encoding"]) headers.delete(h);
  return new Response(body, { status: res.status, statusText: res.statusText, headers });
}

/**
 * A response's body whole, or null past `max` bytes (the rest is not read). A failure reading it
 * (an abort, a reset) is thrown: the caller's, as fetch's own would be.
 */
export async function readCapped(res: Response, max: number): Promise<Buffer | null> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = res.body?.getReader();
  while (reader) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel().catch(() => undefined);
      return null;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks);
}

function nestedError(text: string): string {
  try {
    const parsed = JSON.parse(text) as Record<string, unknown> | null;
    if (parsed && typeof parsed === "object" && !("error" in parsed) && typeof parsed.message === "string") {
      return JSON.stringify({ error: { message: parsed.message, type: parsed.type, code: parsed.code } });
    }
  } catch {
    /* not JSON: the SDK takes the text as the message */
  }
  return text;
}

/** A server's words, as a failure may carry them: short, and without the key should it echo it. */
function scrubbed(text: string, apiKey?: string): string {
  // The key out before the clip: a clip through it would leave its first characters.
  const said = apiKey && apiKey.length >= 4 ? text.split(apiKey).join("[MODEL_API_KEY]") : text;
  return said.length > ERROR_TEXT_CHARS ? `${said.slice(0, ERROR_TEXT_CHARS)}…` : said;
}

export function toModelError(err: unknown, signal?: AbortSignal, apiKey?: string): ModelError {
  if (err instanceof ModelError) return err;
  if (signal?.aborted || err instanceof OpenAI.APIUserAbortError) return new ModelError("cancelled", "the model request was aborted", { cause: err });
  // Ours, thrown in readWhole (the SDK wraps it as a connection error) or after the reply was read.
  const refused = err instanceof ReplyRefused ? err : err instanceof OpenAI.APIConnectionError && err.cause instanceof ReplyRefused ? err.cause : null;
  if (refused) return new ModelError("llm_unavailable", refused.message, { cause: err });
  if (err instanceof OpenAI.APIConnectionTimeoutError) return new ModelError("llm_timeout", "the model server did not answer in time", { cause: err });
  if (err instanceof OpenAI.APIConnectionError) return new ModelError("llm_unavailable", `cannot reach the model server: ${scrubbed(err.message, apiKey)}`, { cause: err });
  if (err instanceof OpenAI.APIError) {
    const status = err.status ?? 0;
    const said = scrubbed(err.message, apiKey);
    if (status === 400 && CONTEXT_RE.test(err.message)) return new ModelError("context_length", said, { cause: err });
    if (status === 408 || status === 409 || status === 429 || status >= 500) return new ModelError("llm_unavailable", `model server answered ${status} after retries: ${said}`, { cause: err });
    return new ModelError("llm_bad_request", `model server refused the request (${status}): ${said}`, { cause: err });
  }
  return new ModelError("llm_unavailable", `model request failed: ${scrubbed((err as Error)?.message ?? String(err), apiKey)}`, { cause: err });
}
