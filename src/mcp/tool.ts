import { isAbsolute, resolve } from "node:path";
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { EmptyResultSchema, type CallToolResult, type ServerNotification } from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod";
import { printable } from "../client/printable.js";
import { timeSpent } from "../client/timeSpent.js";
import { notesOf } from "../client/notes.js";
import { confidenceSchema, jobFailureSchema, policyNameSchema, scopeSchema, timingsSchema, UPLOAD_ID_RE } from "../queue/contract.js";
import type { JobEvent } from "../store/events.js";
import type { JobView } from "../store/jobStore.js";

/**
 * The MCP face of POST /v1/localize: one tool, `localize`, served over Streamable HTTP by
 * the API and over stdio by `codescout-mcp`. Both run it through a LocalizeBackend, so the
 * schemas, the progress messages and the answer the calling model reads are the same.
 */

export interface LocalizeToolInput {
  issue: string;
  repo_url?: string;
  upload?: string;
  commit?: string;
  patch?: string;
  path?: string;
  max_turns?: number;
  policy?: "codescout" | "baseline";
  snippets?: boolean;
  alternatives?: boolean;
  scope?: string;
}

export interface RunHooks {
  /** Fires when the client cancels the tool call; the backend cancels the job. */
  signal: AbortSignal;
  /** One line per step of the job (queued, repository ready, turn 3, ...). */
  progress(message: string): void;
  /** Nothing happened for a while (about 5 s): a chance to keep a quiet connection open. */
  idle?(): void;
  /** The MCP session and JSON-RPC request of the call, where the transport has sessions (HTTP). */
  call?: { session: string; request: string | number };
}

/** A localization at its end. */
export interface LocalizeRun {
  view: JobView;
  /** Where the tree was the caller's own checkout: its top directory, which the answer's paths are relative to. */
  root?: string;
  /** What the answer does not show of the caller's checkout (a submodule not searched, edits not sent): said with it. */
  notes?: string[];
}

export interface LocalizeBackend {
  /** Submits one localization and follows it to its end. Throws LocalizeRefused for a bad request. */
  run(input: LocalizeToolInput, hooks: RunHooks): Promise<LocalizeRun>;
}

/** The service refused the request (the REST API's 4xx): the tool answers with an error the model can act on. */
export class LocalizeRefused extends Error {
  override name = "LocalizeRefused";
  constructor(
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

const description = `Find where in a repository an issue needs changes: the files, classes and functions to edit, each with its line range.

It runs CodeScout (a code-localization agent that explores the tree with rg, grep, sed and cat in a locked-down sandbox), or a model-free baseline when no model server is configured. Best on Python, the language CodeScout was trained on; the baseline also reads TypeScript/JavaScript, Go, Rust, Java/Kotlin, Ruby, PHP, C/C++, C# and Swift trees. Use it before editing, to read the right places first. It answers in seconds to a few minutes; progress is reported per turn.

Give the issue text (or a plain question such as "where is the retry backoff computed?") and the repository. The answer lists \`path:start-end  Class.method\`; each location was checked to exist in the tree, and invalid ones are marked. The baseline also says how sure it is of each (a confidence from 0 to 1 for the file and the function); the model's locations say where the baseline ranks their file. Either answer lists the files the baseline would read next: where the confidence is below about 0.5, or the baseline does not rank the model's file first, or the answer does not fit, look at those.`;

const inputShape = {
  issue: z.string().min(1).max(1_000_000).describe("At most the service's ISSUE_MAX_CHARS (100,000 by default). The issue (title and body) as written, with its traceback, links to lines, pasted diffs, the commit that broke it and related issues or pull requests (#123) if known (they point at the code); or a plain question about where something happens. The text itself: the service follows no link, so a link to the issue alone is refused."),
  repo_url: z.string().min(1).max(2048).optional().describe("Git URL of the repository: https, or an ssh remote as `git remote get-url origin` prints it (git@github.com:owner/name.git), fetched over https."),
  upload: z
    .string()
    .regex(UPLOAD_ID_RE, "an upload id is 64 lowercase hex characters")
    .optional()
    .describe(
      "Instead of repo_url, a tree the service cannot fetch (no remote, a private host), sent first with POST /v1/uploads: `git ls-files -co --exclude-standard -z | tar --null -T - -czf - | curl -s -H \"Authorization: Bearer $KEY\" -H 'content-type: application/gzip' --data-binary @- $SERVICE/v1/uploads` answers its upload_id. patch adds changes on top of it.",
    ),
  commit: z.string().min(1).max(256).optional().describe("Commit sha, branch or tag of repo_url. Default: HEAD (the default branch)."),
  patch: z
    .string()
    .min(1)
    .max(64 << 20)
    .optional()
    .describe(
      "Your changes on top of `commit`, to localize in the tree as you have it: `git diff HEAD` as it prints it (`git add -N` new files first; `--binary` for binary ones), with `commit` the sha it was made against (`git rev-parse HEAD`: a branch may have moved on); on a branch with commits not pushed, `commit` is where it starts on the remote (`git merge-base HEAD @{upstream}`) and the patch is `git diff --binary <that commit>`. Or on top of `upload`. Default: the tree as it is.",
    ),
  max_turns: z.number().min(1).max(50).int().optional().describe("Budget of model calls (default: the server's MAX_TURNS, 10)."),
  policy: policyNameSchema.optional().describe("codescout (the model) or baseline (model-free). Default: codescout when the server has a model, else baseline."),
  snippets: z.boolean().optional().describe("Include each location's code in the answer (capped in lines). Default false."),
  alternatives: z.boolean().optional().describe("List the files the model-free ranking would read next, after the answer. Default true; false for the answer alone."),
  scope: scopeSchema
    .optional()
    .describe("Localize within this directory of the repository only (a monorepo's package: packages/core); paths in the answer stay relative to the repository's top. Default: the whole repository (for a local path below the checkout's top: that directory)."),
};

/** The tool's arguments as one object, for callers without MCP (POST /v1/tools/localize): a field the tool does not take is refused, not dropped. */
export const toolArgumentsSchema = z.object(inputShape).strict();

const pathShape = {
  path: z
    .string()
    .min(1)
    .optional()
    .describe(
      "A local checkout to localize in, with its uncommitted edits; a directory below the checkout's top is searched alone (as `scope`). Default: the client's first root, else the server's working directory. Ignored files (node_modules, build output), and credentials (.env, keys), committed or not, never leave the machine.",
    ),
};

/**
 * The tool as a plain OpenAI function-calling definition, for frameworks without MCP (the
 * repository form: a framework calls the REST API itself, and sends a tree it needs uploaded
 * itself, so the model is asked for a repository; see docs/agents.md).
 */
export function openAiToolDefinition() {
  const { upload: _upload, ...shape } = inputShape;
  const repository = { ...shape, repo_url: z.string().min(1).max(2048).describe("Git URL of the repository: https, or an ssh remote as `git remote get-url origin` prints it (git@github.com:owner/name.git), fetched over https.") };
  const parameters = z.toJSONSchema(z.object(repository).strict(), { target: "draft-7" }) as Record<string, unknown>;
  delete parameters.$schema;
  return { type: "function", function: { name: "localize", description, parameters } };
}

const locationOutput = z.object({
  file: z.string(),
  class_name: z.string().optional(),
  function_name: z.string().optional(),
  start_line: z.number().int().min(1).optional(),
  end_line: z.number().int().min(1).optional(),
  valid: z.boolean(),
  problem: z.string().optional(),
  snippet: z.string().optional(),
  snippet_truncated: z.boolean().optional(),
  evidence: z.array(z.string()).optional(),
  confidence: confidenceSchema.optional(),
});

export const localizeOutputSchema = z.object({
  job_id: z.string(),
  status: z
    .enum(["succeeded", "failed", "cancelled", "queued", "running"])
    .describe("How the job ended; queued or running when the service stopped before it ended (error service_restarting): the job goes on, and asking again gets its answer."),
  answered: z.boolean().describe("False when the localizer ended without an answer."),
  finish_reason: z.string().optional(),
  policy: z.string().optional(),
  fallback: z
    .object({ from: z.string(), reason: z.string() })
    .optional()
    .describe("Present when the model server was away (llm_unavailable) or too slow (llm_timeout) and the model-free baseline answered instead."),
  commit_sha: z.string().optional().describe("The commit localized in (or the upload id of a local tree)."),
  root: z.string().optional().describe("For a local checkout: its top directory on this machine. Every location's file is relative to it (also when the path given was below it)."),
  scope: z.string().optional().describe("The directory of the repository searched, when not all of it (the scope, or a local path below the checkout's top)."),
  notes: z
    .array(z.string())
    .optional()
    .describe("What the answer did not search or does not show as it is: a submodule not searched; for a local checkout, edits git is told to ignore and so not sent, an answer's file not on disk."),
  locations: z.array(locationOutput),
  alternatives: z.array(locationOutput).optional().describe("The baseline's next candidates, not part of the answer: where to read when the answer's confidence is low, or the model's answer does not fit."),
  timings: timingsSchema.optional(),
  // The job's failure as its view has it; the code any string, since a call's own ends (service_restarting) are no job's.
  error: jobFailureSchema.extend({ code: z.string() }).optional(),
});
export type LocalizeOutput = z.infer<typeof localizeOutputSchema>;

/** Registers `localize` on a server; `localPaths` adds the `path` input (stdio: the caller's machine). */
export function registerLocalizeTool(server: McpServer, backend: LocalizeBackend, options: { localPaths: boolean; defaultPath?: () => Promise<string | undefined> }) {
  // Where the service cannot see the caller's disk (HTTP), repo_url or upload is required: remoteRepoOf checks it.
  const inputSchema: z.ZodRawShape = options.localPaths
    ? {
        ...inputShape,
        // Given, the repository is fetched by the service and the checkout is not read: the agent's edits are not in it.
        repo_url: inputShape.repo_url.describe("Leave out to localize the local checkout (path) as it is, edits included. Given, the service fetches this repository instead (https, or an ssh remote as `git remote get-url origin` prints it) and the local checkout is not read."),
        ...pathShape,
      }
    : inputShape;
  server.registerTool(
    "localize",
    {
      title: "Localize code for an issue",
      description,
      // Strict: an argument this server does not take (a `path` sent to the service's own
      // endpoint, a misspelt `repo`) is refused by name, not silently dropped.
      inputSchema: z.object(inputSchema).strict(),
      outputSchema: localizeOutputSchema.shape,
      annotations: { title: "Localize code for an issue", readOnlyHint: true, idempotentHint: true, destructiveHint: false, openWorldHint: true },
    },
    async (args, extra): Promise<CallToolResult> => {
      const input = args as unknown as LocalizeToolInput;
      if (options.localPaths && !input.repo_url && !input.upload && (!input.path || !isAbsolute(input.path))) {
        // A relative path ("src/pkg", ".") is the client's, from its root, not from wherever the
        // client started this server (its home, `/`).
        const fallback = await options.defaultPath?.();
        if (fallback) input.path = input.path ? resolve(fallback, input.path) : fallback;
      }
      const token = extra._meta?.progressToken;
      let step = 0;
      let last = "";
      let lastAt = Date.now();
      const notify = (message: string) => {
        if (token === undefined) return;
        const notification: ServerNotification = { method: "notifications/progress", params: { progressToken: token, progress: ++step, message } };
        void extra.sendNotification(notification).catch(() => undefined);
      };
      const progress = (message: string) => {
        last = message;
        lastAt = Date.now();
        notify(message);
      };
      // A quiet step (a long model call) says where it is again: over HTTP the stream stays alive
      // through a proxy's read timeout, and a client that resets its timeout on progress keeps waiting.
      // A client that asked for no progress is pinged on the call's own stream instead (every MCP
      // client answers a ping): without it, a job of minutes would leave that stream silent.
      const idle = () => {
        if (token === undefined) void extra.sendRequest({ method: "ping" }, EmptyResultSchema, { timeout: 30_000 }).catch(() => undefined);
        // Said as no news since, not as the step again: a step repeated read as work going on
        // (a scan every 5 s) while the job's worker was dead and the job waited for its retry.
        else if (last) notify(`${last} (nothing new for ${Math.round((Date.now() - lastAt) / 1000)} s)`);
      };
      try {
        const call = extra.sessionId ? { session: extra.sessionId, request: extra.requestId } : undefined;
        const { view, root, notes } = await backend.run(input, { signal: extra.signal, progress, idle, ...(call ? { call } : {}) });
        return answer(view, root, notes);
      } catch (err) {
        if (err instanceof LocalizeRefused) return refusal(err);
        throw err;
      }
    },
  );
}

/** The progress line for a job event, or null for events not worth a line. */
export function describeEvent(event: JobEvent): string | null {
  const d = event.data ?? {};
  switch (event.type) {
    case "queued":
      return d.job ? `queued: job ${String(d.job)}` : "queued";
    case "started":
      return `started (${String(d.policy ?? "")})`;
    case "repository_ready":
      return `repository ready (${String(d.cache ?? "")}, ${String(d.ms ?? "?")} ms)`;
    case "sandbox_ready":
      return `sandbox ready (${String(d.ms ?? "?")} ms)`;
    case "turn":
      return `turn ${String(d.turn)}/${String(d.max_turns)}`;
    case "command":
      return `$ ${String(d.command ?? "")}`;
    case "fallback":
      return `the model server ${modelServerFailure(d.reason)}: the model-free baseline answers`;
    case "finished":
      return "finished";
    case "failed":
      return `failed: ${String(d.code ?? "")}`;
    case "cancelled":
      return "cancelled";
    case "no_worker":
      return `waiting: ${String(d.message ?? "no worker is running")}`;
    default:
      return null;
  }
}

/** What a fallback's reason says the model server did, in the words the calling model reads. */
function modelServerFailure(reason: unknown): string {
  return reason === "llm_timeout" ? "did not answer in time" : "could not be reached";
}

/** A REST field name as the tool's argument name (repo.url → repo_url). */
export function toolField(field: string | undefined): string | undefined {
  if (!field) return undefined;
  const map: Record<string, string> = { "repo.url": "repo_url", "repo.upload": "upload", "repo.commit": "commit", "repo.patch": "patch", issue: "issue" };
  return map[field] ?? field.replace(/^options\./, "");
}

/**
 * The tree a call names without a local path: a repository by URL at a commit (HEAD by default), or
 * an upload, with the caller's patch on top. Throws LocalizeRefused when it names neither.
 */
export function remoteRepoOf(input: LocalizeToolInput) {
  const patch = input.patch ? { patch: input.patch } : {};
  if (input.upload !== undefined && input.repo_url === undefined) return { upload: input.upload, ...(input.commit ? { commit: input.commit } : {}), ...patch };
  if (input.repo_url === undefined) throw new LocalizeRefused("invalid_repository", "give repo_url (a repository the service fetches) or upload (a tree sent with POST /v1/uploads)", "repo_url");
  return { url: input.repo_url, commit: input.commit ?? "HEAD", ...(input.upload ? { upload: input.upload } : {}), ...patch };
}

/** The options of a localize request, from the tool's arguments. */
export function optionsOf(input: LocalizeToolInput): Record<string, unknown> {
  return {
    ...(input.policy ? { policy: input.policy } : {}),
    ...(input.max_turns ? { max_turns: input.max_turns } : {}),
    ...(input.snippets ? { snippets: true } : {}),
    ...(input.alternatives === false ? { alternatives: false } : {}),
    ...(input.scope ? { scope: input.scope } : {}),
  };
}

function refusal(err: LocalizeRefused): CallToolResult {
  const where = err.field ? ` (${err.field})` : "";
  const what = err.code === "service_unreachable" ? "The service could not be reached" : "The request was refused";
  return { isError: true, content: [{ type: "text", text: `${what}${where}: ${err.message} [${err.code}]` }] };
}

/** The job's end as the tool's result: structured for programs, a few lines for the calling model. */
export function answer(view: JobView, root?: string, checkoutNotes: string[] = []): CallToolResult {
  if (view.status === "queued" || view.status === "running") return handedOff(view);
  const status = view.status === "succeeded" ? "succeeded" : view.status === "cancelled" ? "cancelled" : "failed";
  const r = view.result;
  const notes = notesOf(r, checkoutNotes);
  const structured: LocalizeOutput = {
    job_id: view.id,
    status,
    answered: r?.answered ?? false,
    ...(r ? { finish_reason: r.finish_reason, policy: r.policy, commit_sha: r.commit_sha, timings: r.timings } : {}),
    ...(r?.fallback ? { fallback: r.fallback } : {}),
    ...(root ? { root } : {}),
    ...(r?.scope ? { scope: r.scope } : {}),
    ...(notes.length ? { notes } : {}),
    locations: (r?.locations ?? []).map((l) => ({ ...l })),
    ...(r?.alternatives?.length ? { alternatives: r.alternatives.map((l) => ({ ...l })) } : {}),
    ...(view.error ? { error: view.error } : {}),
  };
  if (status !== "succeeded" || !r) {
    const why = view.error ? `${view.error.code}: ${view.error.message}${timeSpent(view.error.timings)}` : view.status;
    return { isError: true, structuredContent: structured, content: [{ type: "text", text: printable(`Localization ${status} (${why}).`) }] };
  }
  // The text is what an agent's user may see printed (its terminal): the structured answer keeps the names as they are.
  const noted = notes.map((n) => `\nNote: ${n}`).join("");
  return { structuredContent: structured, content: [{ type: "text", text: printable(summary(structured) + noted, { lines: true }) }] };
}

/**
 * A job the service stopped following before it ended (the API is restarting): it goes on. The
 * same call made again gets an answer: from the result cache once this job has ended, else from a
 * job of its own; on POST /v1/tools/localize, the same Idempotency-Key follows this very job.
 */
function handedOff(view: JobView): CallToolResult {
  // Not ended: the service stopping with the call held, or (its error says so) no worker to go on with it.
  const error = view.error ?? { code: "service_restarting", message: `the service is restarting; job ${view.id} is still ${view.status} and goes on: make the same call again for its answer` };
  const message = view.error ? `${error.code}: ${error.message}` : error.message;
  const structured: LocalizeOutput = { job_id: view.id, status: view.status as "queued" | "running", answered: false, locations: [], error };
  return { isError: true, structuredContent: structured, content: [{ type: "text", text: `Localization not finished (${message}).` }] };
}

/** A snippet's fence language and line-comment marker, by file extension: each one the baseline reads, a bare fence for any other. */
const FENCES: Record<string, [string, string]> = {
  py: ["python", "#"], js: ["js", "//"], jsx: ["jsx", "//"], mjs: ["js", "//"], cjs: ["js", "//"], ts: ["ts", "//"], tsx: ["tsx", "//"],
  go: ["go", "//"], rs: ["rust", "//"], java: ["java", "//"], kt: ["kotlin", "//"], scala: ["scala", "//"], rb: ["ruby", "#"],
  php: ["php", "//"], c: ["c", "//"], h: ["c", "//"], cc: ["cpp", "//"], cpp: ["cpp", "//"], hpp: ["cpp", "//"], cs: ["csharp", "//"], swift: ["swift", "//"],
  mts: ["ts", "//"], cts: ["ts", "//"], vue: ["vue", "//"], svelte: ["svelte", "//"], kts: ["kotlin", "//"], groovy: ["groovy", "//"], cxx: ["cpp", "//"], hh: ["cpp", "//"],
};

function summary(out: LocalizeOutput): string {
  const seconds = out.timings ? ` in ${(out.timings.total_ms / 1000).toFixed(1)} s` : "";
  // An agent started below a checkout's top (a monorepo's package) would otherwise look for the
  // files under its own directory, and take a scoped search for the whole repository's.
  const searched = out.scope ? `; searched in ${out.scope}/ only` : "";
  const under = `${searched}${out.root ? `; paths are relative to ${out.root}` : ""}`;
  // What is said of a file (its terms, what it defines) comes with each of its locations; the
  // calling model reads it once, with the file's first location, and no more of its context goes to it.
  const first = new Map<string, Set<string>>();
  const describe = (l: LocalizeOutput["locations"][number]) => {
    const said = first.get(l.file);
    if (!said) first.set(l.file, new Set(l.evidence));
    return describeLocation(l, (l.evidence ?? []).filter((e) => !said?.has(e)));
  };
  const lines = out.locations.map(describe);
  const leads = out.alternatives?.map(describe).join("\n");
  const by = out.fallback ? `${out.policy}, as the model server ${modelServerFailure(out.fallback.reason)}` : out.policy;
  if (!out.answered || out.locations.length === 0) {
    const none = `No locations found (${by}, ${out.finish_reason}${seconds}).`;
    // A larger budget of model calls does nothing for the model-free baseline.
    const more = out.policy === "baseline" ? "naming what the issue is about in the code's own words (a function, a class, an error message, a traceback)" : "or a larger max_turns";
    if (!leads) return `${none} Try a more specific issue text, ${more}.`;
    return `${none} Where the model-free ranking would start reading (leads, not an answer${under}):\n${leads}`;
  }
  const head = `${out.locations.length} location${out.locations.length === 1 ? "" : "s"} (${by}, ${out.finish_reason}${seconds}${under}):\n${lines.join("\n")}`;
  if (!leads) return head;
  // The model's locations carry no confidence: its leads come from the baseline's ranking.
  const why = out.policy === "baseline" ? "less likely (read these if the confidence above is low)" : "by the model-free ranking (leads, not part of the model's answer)";
  return `${head}\nAlso considered, ${why}:\n${leads}`;
}

function describeLocation(l: LocalizeOutput["locations"][number], evidence: string[]): string {
  const where = l.start_line ? `${l.file}:${l.start_line}-${l.end_line}` : l.file;
  const what = [l.class_name, l.function_name].filter(Boolean).join(".") || "(whole file)";
  const flag = l.valid ? "" : `  [not found: ${l.problem ?? "invalid"}]`;
  const sure = l.confidence ? `  [confidence: file ${l.confidence.file.toFixed(2)}${l.confidence.function === undefined ? "" : `, function ${l.confidence.function.toFixed(2)}`}]` : "";
  const why = evidence.length ? `  (${evidence.join("; ")})` : "";
  const [lang, comment] = FENCES[l.file.slice(l.file.lastIndexOf(".") + 1).toLowerCase()] ?? ["", "//"];
  const code = l.snippet ? `\n\`\`\`${lang}\n${l.snippet}${l.snippet_truncated ? `\n${comment} ...` : ""}\n\`\`\`` : "";
  return `${where}  ${what}${flag}${sure}${why}${code}`;
}
