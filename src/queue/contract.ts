import { z } from "zod";

/**
 * The one contract between the API (producer) and the workers (consumer): queue names,
 * the payload each queue carries and the result a job returns. Both sides import these
 * schemas; nothing else defines a job's shape.
 */

export const QUEUES = { localize: "localize", webhook: "webhook" } as const;
export type QueueName = (typeof QUEUES)[keyof typeof QUEUES];

export const SHA_RE = /^[0-9a-f]{40}$/;
/**
 * A name git resolves (a branch, a tag, `refs/pull/7/head`, `main~1`): what git allows in a ref
 * name (`fix#12`, `résumé`) and the suffixes read after it; never an option (leading "-"), a
 * range (".."), nor what git refuses in a name (spaces, controls, `:?*[\`).
 */
export const REF_RE = /^(?!-)(?!.*\.\.)[^\s\p{Cc}:?*[\\]{1,200}$/u;

export const policyNameSchema = z.enum(["codescout", "baseline"]);

/**
 * A directory of the repository, relative to its top: plain segments only, so it names a place
 * inside the tree however it is spelled (the worker still checks where it leads on disk). A `.`
 * segment means nothing and is dropped (`./packages/core/`, as a shell completes it).
 */
export const scopeSchema = z
  .string()
  .min(1)
  .max(1024)
  .refine((s) => {
    const segments = s.replace(/\/+$/, "").split("/");
    return segments.every((x) => x !== "" && x !== ".." && !/[\0-\x1f\\]/.test(x));
  }, "a directory of the repository relative to its top (packages/core), without leading /, empty or .. segments")
  .describe(
    "Localize within this directory of the repository only (a monorepo's package: `packages/core`). The answer's paths stay relative to the repository's top. Default: the whole repository.",
  );

/** The scope as the worker and the cache use it: without `.` segments and trailing slashes (`.` alone: the whole tree). */
export function normalScope(scope: string | undefined): string | undefined {
  return (
    scope
      ?.replace(/\/+$/, "")
      .split("/")
      .filter((x) => x !== ".")
      .join("/") || undefined
  );
}

export const localizeOptionsSchema = z
  .object({
    policy: policyNameSchema.optional().describe("Which localizer runs. Default: codescout when a model server is configured, else baseline."),
    max_turns: z.number().min(1).max(50).int().optional().describe("Budget of model calls (training used 10)."),
    temperature: z.number().min(0).max(2).optional().describe("Sampling temperature (default 0.6, as in CodeScout's evaluation)."),
    finish_policy: z
      .enum(["recover", "strict"])
      .optional()
      .describe("recover: one extra turn asking for the answer when the episode ends without one; strict: exactly as in training."),
    cache: z.boolean().optional().describe("Answer from the result cache when the same request was answered before (default true)."),
    snippets: z
      .boolean()
      .optional()
      .describe("Add the code of each valid class or function location (`snippet`, at most SNIPPET_MAX_LINES lines). Default false."),
    alternatives: z
      .boolean()
      .optional()
      .describe(
        "Name the files the model-free ranking would read next beside the answer (`alternatives`, not part of it). Default true. false leaves them out; with the model it also skips that ranking (its CPU, and the model's locations' evidence of where it ranks their file).",
      ),
    scope: scopeSchema.optional(),
  })
  .strict();

export const UPLOAD_ID_RE = /^[0-9a-f]{64}$/;
/** The ids the service hands out for jobs and MCP sessions (randomUUID's form). */
export const SERVICE_ID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** How many definitions a named commit carries at most; a client cuts what it read to this. */
export const NAMED_COMMIT_DEFS_MAX = 200;

/**
 * What one commit an issue names changed, as a client read it from its own checkout's history:
 * an uploaded tree comes without history, and a patch's commits are in none the service holds,
 * so the service cannot read them (repos/history.ts does for a repository URL). It only guides
 * that job's own answer.
 */
export const namedCommitSchema = z
  .object({
    ref: z
      .string()
      .regex(/^(?:[0-9a-f]{7,40}|(?:[\w.-]{1,100}\/[\w.-]{1,100}|[\w-]{1,63}(?:\.[\w-]{1,63}){1,8})?#[0-9]{2,7})$/, "a ref is a sha (7-40 hex) or #123")
      .describe(
        "How the issue names it: a sha as written, or `#123` for a commit whose message mentions that number (`owner/name#123`, `host#123` where the issue links to a tracker).",
      ),
    sha: z.string().regex(/^[0-9a-f]{40}$/, "a sha is 40 lowercase hex characters"),
    files: z.array(z.string().min(1).max(1024)).max(50).describe("Paths the commit changed, relative to the tree's root."),
    defs: z
      .array(z.object({ file: z.string().min(1).max(1024), name: z.string().min(1).max(200) }).strict())
      .max(NAMED_COMMIT_DEFS_MAX)
      .describe("Functions and classes its hunks sit in (any language the baseline reads)."),
  })
  .strict();
export type NamedCommitRef = z.infer<typeof namedCommitSchema>;

/**
 * Which tree a job localizes: a commit of a git repository (`url` + `commit`), optionally
 * with the caller's uncommitted changes on top (`patch`), or a working tree the caller
 * uploaded (`upload`), with its changes since on top (`patch`). One flat object so that every mistake names its own field.
 */
export const repoRefSchema = z
  .object({
    url: z.string().min(1).max(2048).optional().describe("Git URL of the repository: https, or an ssh remote as `git remote get-url` prints it (git@github.com:owner/name.git), fetched over https; http and file:// only when the server allows them."),
    commit: z.string().min(1).max(256).optional().describe("A 40-hex commit sha, or a name the repository's remote resolves when the job starts (a branch, a tag, `HEAD`, `refs/pull/7/head`, `main~1`). Required with `url`."),
    token: z
      .string()
      .min(1)
      .max(4096)
      .optional()
      .describe("Access token for a private repository; used only by git on the worker host, never stored in clear, never in the sandbox."),
    patch: z
      .string()
      .min(1)
      .optional()
      .describe(
        "A unified diff as `git diff --binary HEAD` prints it, applied on top of `commit` (the caller's uncommitted edits), or of the tree `upload` names (the caller's changes since it was sent), in a copy of the tree. At most PATCH_MAX_BYTES. A patch that does not apply fails the job with `patch_does_not_apply` naming the first failing file.",
      ),
    upload: z
      .string()
      .regex(UPLOAD_ID_RE, "an upload id is 64 lowercase hex characters")
      .optional()
      .describe("An upload id from POST /v1/uploads: localize that working tree instead of a commit. Combined with no other field but `patch` and `commits`."),
    commits: z
      .array(namedCommitSchema)
      .max(8)
      .optional()
      .describe(
        "What the commits the issue names changed, read from the caller's own history (`codescout-mcp` and the `localize` CLI send it): with `upload`, which comes without history, or with `url` + `patch` for the commits the patch carries (a branch no remote holds yet). The service reads a repository URL's own history itself, and these count only for commits it does not find there.",
      ),
  })
  .strict();
export type RepoRef = z.infer<typeof repoRefSchema>;

/** A repository reference as stored in a job and shown: never its token, the patch only by its hash. */
export const publicRepoRefSchema = z.object({
  url: z.string().optional(),
  commit: z.string().optional(),
  upload: z.string().optional(),
  patch_sha256: z.string().optional().describe("SHA-256 of the patch applied on top of the commit."),
});
export type PublicRepoRef = z.infer<typeof publicRepoRefSchema>;

export const locationSchema = z.object({
  file: z.string(),
  class_name: z.string().optional(),
  function_name: z.string().optional(),
});

/** What the worker receives. Never carries secrets: tokens stay out of Redis in clear. */
/** The owner of every job when auth is off (AUTH_MODE=off): no key, so one for all. */
export const ANONYMOUS = "anonymous";

// Strict, every part of it: a field a worker does not know is a newer API's, and the job waits for
// an upgraded worker (processor.ts) rather than run without what it asked for.
export const localizePayloadSchema = z.strictObject({
  jobId: z.string().min(1),
  repo: publicRepoRefSchema.strict(),
  /** The request's repository token sealed with SECRET_KEY (queue/secrets.ts). */
  sealedToken: z.string().optional(),
  /** The caller's uncommitted changes, applied on top of repo.commit by the worker. */
  patch: z.string().optional(),
  /** With repo.upload, or a patch's own commits: what the commits the issue names changed, from the caller's history. */
  commits: z.array(namedCommitSchema).optional(),
  issue: z.string().min(1),
  options: localizeOptionsSchema,
  /**
   * Who chose options.policy: the request, or the service's default. Only the default falls back
   * to the baseline when the model server is away (MODEL_FALLBACK). Absent (a job queued by an
   * earlier API): as if the request had.
   */
  policyChosenBy: z.enum(["request", "service"]).optional(),
  /** The API key name that submitted the job ("anonymous" when auth is off). */
  owner: z.string(),
  callbackUrl: z.string().optional(),
  submittedAt: z.string(),
});
export type LocalizePayload = z.infer<typeof localizePayloadSchema>;

export const confidenceSchema = z
  .object({
    file: z.number().min(0).max(1).describe("How likely the file is one the fix changes."),
    function: z.number().min(0).max(1).optional().describe("How likely the function is one the fix changes (present when the location names one)."),
  })
  .describe(
    "The baseline's calibrated estimate (the model answers without one): of the locations it gave about 0.8 on issues of repositories it was never tuned on, about 8 in 10 were right. Low values say: check before relying on it.",
  );

export const checkedLocationSchema = locationSchema.extend({
  evidence: z.array(z.string()).optional().describe("Why the policy chose this location (matched issue terms, a traceback frame, a quoted line); on the model's locations, where the model-free ranking put their file (with MODEL_ALTERNATIVES). At most 5 short items."),
  confidence: confidenceSchema.optional(),
  valid: z.boolean().describe("The file (and class/function, when given) exists at the commit."),
  problem: z.string().optional().describe("Why the location is not valid."),
  start_line: z
    .number()
    .int()
    .min(1)
    .optional()
    .describe("First line (1-based) of the class or function, decorators included; absent for a file-only location."),
  end_line: z.number().int().min(1).optional().describe("Last line (1-based, inclusive) of the class or function."),
  snippet: z.string().optional().describe("The location's code (with `options.snippets`), cut after SNIPPET_MAX_LINES lines."),
  snippet_truncated: z.boolean().optional().describe("True when `snippet` was cut."),
});
export type CheckedLocationView = z.infer<typeof checkedLocationSchema>;

export const usageSchema = z.object({
  model_calls: z.number().int().min(0),
  prompt_tokens: z.number().int().min(0),
  completion_tokens: z.number().int().min(0),
});

export const timingsSchema = z.object({
  queue_wait_ms: z.number(),
  repo_ms: z.number(),
  sandbox_ms: z.number(),
  policy_ms: z.number(),
  model_ms: z.number(),
  tool_ms: z.number(),
  total_ms: z.number(),
});

export const finishReasonSchema = z.enum(["finish_tool", "recovered", "text_reply", "budget_exhausted", "context_exhausted", "stuck"]);

export const localizeResultSchema = z.object({
  policy: policyNameSchema.describe("The localizer that answered: the baseline when the model server was away and it answered instead (see fallback)."),
  finish_reason: finishReasonSchema,
  commit_sha: z.string(),
  scope: z.string().optional().describe("The directory of the repository the job localized in (`options.scope`); absent for the whole repository."),
  repo_cache: z.enum(["hot", "warm", "cold"]),
  answered: z.boolean().describe("False when the episode ended without a localization_finish call."),
  locations: z.array(checkedLocationSchema),
  alternatives: z
    .array(checkedLocationSchema)
    .optional()
    .describe(
      "The baseline's next candidates, not part of the answer: the files it ranked best that the answer does not name (five files in all), each with its best definition and the file's confidence. Read them when the answer's confidence is low (the model's answer has none: it is wrong about a third of the time). Not part of files/modules/entities.",
    ),
  fallback: z
    .object({ from: policyNameSchema, reason: z.string() })
    .optional()
    .describe(
      "Present when the model server could not be reached or did not answer in time (reason llm_unavailable or llm_timeout) and the model-free baseline answered instead (`policy`: baseline). Only for requests that did not name a policy; not kept in the result cache.",
    ),
  notes: z
    .array(z.string().max(2000))
    .max(10)
    .optional()
    .describe("What the service did not search of the tree, for the caller to know: the submodules it holds as empty directories (the service fetches none); of a tree past the baseline's 20,000 source files, how many it read."),
  files: z.array(z.string()),
  modules: z.array(z.string()),
  entities: z.array(z.string()),
  turns: z.number().int().min(0),
  timings: timingsSchema,
  usage: usageSchema,
});
export type LocalizeResult = z.infer<typeof localizeResultSchema>;

/** Machine-readable reasons a job fails; stored as the job's failure. */
export const failureCodeSchema = z.enum([
  "invalid_repository",
  "repository_unavailable",
  "commit_not_found",
  "patch_does_not_apply",
  "upload_not_found",
  "invalid_upload",
  "scope_not_found",
  "sandbox_failed",
  "job_timeout",
  "llm_unavailable",
  "llm_timeout",
  "llm_bad_request",
  "cancelled",
  // Cancelled while queued because no worker was alive to take it (NO_WORKER_WAIT_S).
  "no_worker",
  // Its worker died (killed, crashed, its host gone) while it ran, twice: not tried a third time.
  "worker_lost",
  "internal",
]);
export type FailureCode = z.infer<typeof failureCodeSchema>;

export const jobFailureSchema = z.object({
  code: failureCodeSchema,
  message: z.string(),
  timings: timingsSchema
    .partial()
    .optional()
    .describe("Where the job's time went until it failed, phase by phase as each ended (a job_timeout with most of it in repo_ms was a slow fetch: send an upload, or a scope)."),
});
export type JobFailure = z.infer<typeof jobFailureSchema>;

export const progressSchema = z.object({
  phase: z.enum(["queued", "repository", "sandbox", "localizing", "validating", "done"]),
  turn: z.number().int().min(0),
  max_turns: z.number().int().min(0),
});
export type JobProgress = z.infer<typeof progressSchema>;

/** A finished job's view, to be POSTed to the job's callback_url. */
export const webhookPayloadSchema = z.object({ jobId: z.string(), url: z.string() });
export type WebhookPayload = z.infer<typeof webhookPayloadSchema>;

/** Typed map queue name → payload/result, for producer and consumer helpers. */
export interface QueueContract {
  localize: { payload: LocalizePayload; result: LocalizeResult };
  webhook: { payload: WebhookPayload; result: { status: number } };
}
