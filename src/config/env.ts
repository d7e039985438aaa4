import { availableParallelism } from "node:os";
import { z } from "zod";

/**
 * The whole environment of both processes, parsed once at boot. Entry points call
 * `loadConfig()` and hand the result down; nothing else reads process.env.
 */
const bool = z.stringbool({ truthy: ["1", "true", "yes", "on"], falsy: ["0", "false", "no", "off", ""] });
/**
 * Decimal digits only: Number() would read `0x1F90` as 8080 and `8e3` as 8000, and a value that
 * means something else than it says is worse than one refused.
 */
const int = (min: number, max: number) =>
  z
    .string()
    .trim()
    .regex(/^\d+$/, `expected a whole number from ${min} to ${max}, in decimal digits`)
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

export const envSchema = z.object({
  REDIS_URL: z.url({ protocol: /^rediss?$/, error: "expected a redis:// or rediss:// URL" }).default("redis://127.0.0.1:6379"),
  QUEUE_PREFIX: z.string().regex(/^[A-Za-z0-9:_-]{1,64}$/).default("codescout"),

  API_HOST: z.string().min(1).default("127.0.0.1"),
  API_PORT: int(0, 65535).default(8080),
  /**
   * Host names the API answers to (comma-separated). Default: when API_HOST is a loopback
   * address, only localhost, 127.0.0.1 and [::1], so a web page cannot reach a local service
   * through DNS rebinding; otherwise any.
   */
  API_ALLOWED_HOSTS: z.string().default(""),
  /** Browser origins allowed besides the API's own (comma-separated, e.g. https://app.example.com). */
  API_ALLOWED_ORIGINS: z.string().default(""),
  MCP_SESSION_IDLE_S: int(10, 7 * 86_400).default(1800),
  MCP_MAX_SESSIONS: int(1, 1_000_000).default(1000),
  /** An MCP answer its client has read none of for this long is cut: its session is then free to close. */
  MCP_UNREAD_ANSWER_S: int(1, 3600).default(30),
  /** Jobs one API process follows at once (event streams, held calls), and one key of them. */
  MAX_FOLLOWERS: int(1, 100_000).default(2000),
  MAX_FOLLOWERS_PER_KEY: int(1, 100_000).default(200),
  // A call held for an agent (MCP, POST /v1/tools/localize, the CLI) whose job has waited this long
  // with no worker alive is told so and gives up, instead of waiting for one that may never start.
  NO_WORKER_WAIT_S: int(1, 86_400).default(20),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),

  MODEL_BASE_URL: z.url({ protocol: /^https?$/, error: "expected an http:// or https:// URL, such as http://vllm:8000/v1" }).optional(),
  MODEL_NAME: z.string().min(1).default("OpenHands/CodeScout-4B"),
  MODEL_API_KEY: z.string().optional(),
  MODEL_TIMEOUT_MS: int(1_000, 3_600_000).default(300_000),
  /** When the model server is away or too slow for a job that named no policy: the baseline answers instead (baseline), or the job fails (none). */
  MODEL_FALLBACK: z.enum(["baseline", "none"]).default("baseline"),
  MODEL_MAX_RETRIES: int(0, 10).default(4),
  /**
   * The model's answers also carry the baseline's next files as `alternatives` (one scan of the
   * tree after the answer, ~0.4-1.2 s of CPU the sandbox takes only where other episodes leave it
   * idle). Off where even idle CPU is wanted elsewhere.
   */
  MODEL_ALTERNATIVES: bool.default(true),
  PROMPT_PACK_DIR: z.string().min(1).optional(),
  MAX_TURNS: int(1, 100).default(10),
  /** Lines of code per location when a request asks for snippets. */
  SNIPPET_MAX_LINES: int(1, 2000).default(60),

  SANDBOX_IMAGE: z.string().min(1).default("codescout-sandbox:latest"),
  SANDBOX_MOUNT_MODE: z.enum(["bind", "copy"]).default("bind"),
  SANDBOX_MEMORY_MB: int(64, 65_536).default(1024),
  SANDBOX_PIDS_LIMIT: int(16, 65_536).default(256),
  SANDBOX_CPUS: z.coerce.number().min(0.1).max(64).default(1),
  SANDBOX_TMPFS_MB: int(1, 65_536).default(256),
  SANDBOX_JOB_TIMEOUT_S: int(10, 86_400).default(900),
  /** Sandboxes starting at once per worker; default: one per core. */
  SANDBOX_START_CONCURRENCY: int(1, 1024).optional(),

  REPO_CACHE_DIR: z.string().min(1).default(".cache/repos"),
  /** Per-commit trees; default: the host's tmpfs when it has 1 GiB free, else <REPO_CACHE_DIR>/trees. */
  REPO_TREE_DIR: z.string().min(1).optional(),
  /** Megabytes of trees kept; default: a quarter of the tmpfs they live on, or no limit on disk. 0: no limit. */
  REPO_TREE_MAX_MB: int(0, 16 * 1024 * 1024).optional(),
  /** Per-commit trees kept; the least recently used idle ones beyond this are removed. 0: keep all. */
  REPO_MAX_TREES: int(0, 1_000_000).default(200),
  /** Megabytes of bare mirrors kept; the least recently used idle ones beyond it are removed. Default: no fixed limit. */
  REPO_MIRROR_MAX_MB: int(0, 1 << 30).optional(),
  /** Idle mirrors are also removed while their disk has less than this many megabytes free. 0: never. */
  REPO_MIRROR_MIN_FREE_MB: int(0, 1 << 30).default(2048),
  /**
   * Seconds a repository's first clone may run before the job that asked is answered from its
   * commit alone, fetched shallow, while the clone goes on. `off`: every first job waits for its clone.
   */
  REPO_SHALLOW_FIRST_AFTER_S: z.union([z.literal("off"), int(0, 86_400)], { error: "expected `off` or seconds (0 to 86400)" }).default(3),
  ALLOW_FILE_URLS: bool.default(false),
  /** Size cap of `repo.patch` (the caller's uncommitted changes), in bytes. */
  PATCH_MAX_BYTES: int(1024, 64 << 20).default(2 << 20),

  /** Where uploaded working trees wait for a worker: a directory (one host or a shared volume) or Redis. */
  UPLOAD_STORE: z.enum(["dir", "redis"]).default("dir"),
  UPLOAD_DIR: z.string().min(1).default(".cache/uploads"),
  UPLOAD_TTL_S: int(60, 30 * 86_400).default(86_400),
  /** Disk kept free under UPLOAD_DIR (the store is "dir"): an upload that could go below it is refused (503). */
  UPLOAD_MIN_FREE_MB: int(0, 1 << 30).default(2048),
  /** Bytes of archives the "redis" store keeps at once, and (apart) one API process buffers of those arriving: past either an upload is refused (503). */
  UPLOAD_REDIS_MAX_MB: int(1, 1 << 20).default(1024),
  /** With AUTH_MODE=api_key, archives' bytes one API key may hold at once, whoever stored them; 0: no share of its own (the store's caps alone). */
  UPLOAD_KEY_MAX_MB: int(0, 1 << 20).default(512),
  /** The archive as sent (compressed or not). */
  UPLOAD_MAX_ARCHIVE_BYTES: int(1024, 4 * 1024 ** 3).default(100 << 20),
  /** Sum of file sizes once unpacked. */
  UPLOAD_MAX_BYTES: int(1024, 16 * 1024 ** 3).default(512 << 20),
  UPLOAD_MAX_FILES: int(1, 10_000_000).default(100_000),
  UPLOAD_MAX_PATH_BYTES: int(64, 4096).default(1024),
  UPLOAD_MAX_RATIO: int(2, 10_000).default(100),

  /** Jobs per worker process; default: workerConcurrency() below. */
  WORKER_CONCURRENCY: int(1, 1024).optional(),
  /** A job whose worker stops renewing its lock this long is taken as stalled and retried. */
  WORKER_LOCK_MS: int(1_000, 600_000).default(60_000),
  /** On SIGTERM a worker finishes its jobs for this long, then hands the rest back to the queue. */
  WORKER_SHUTDOWN_GRACE_S: int(0, 3600).default(30),
  /** Where the worker serves GET /metrics (its model requests, webhooks, disk, process); none when unset. 0: any free port. */
  WORKER_METRICS_PORT: int(0, 65535).optional(),
  WORKER_METRICS_HOST: z.string().min(1).default("127.0.0.1"),
  JOB_TTL_S: int(60, 30 * 86_400).default(7 * 86_400),
  ISSUE_MAX_CHARS: int(100, 1_000_000).default(100_000),
  RESULT_CACHE_TTL_S: int(0, 30 * 86_400).default(86_400),
  WAIT_MAX_S: int(0, 900).default(60),
  /** On SIGTERM the API ends event streams at once and gives calls held for an agent this long, then answers them with their job as it stands. */
  API_SHUTDOWN_GRACE_S: int(0, 3600).default(20),
  BATCH_MAX: int(1, 1000).default(100),

  /** Repository URL policy: comma-separated host allow-list (empty: any public host). */
  REPO_ALLOWED_HOSTS: z.string().default(""),
  /** Loopback, link-local and private addresses are refused unless this is on. */
  ALLOW_PRIVATE_HOSTS: bool.default(false),
  /** Accept http:// repository URLs (https is always accepted). */
  ALLOW_HTTP_URLS: bool.default(false),
  /** A host name lookup slower than this fails the request or the job (fail closed). */
  DNS_TIMEOUT_MS: int(100, 60_000).default(2_000),
  /** JSON object host → token, used by git on the host for private repositories. */
  GIT_CREDENTIALS: z
    .string()
    .optional()
    // Checked here, naming the variable and never echoing it: JSON.parse's own message quotes the text, tokens included.
    .refine(
      (raw) => raw === undefined || isHostTokens(raw),
      "must be a JSON object of host name → token, such as {\"github.com\": \"ghp_…\"}: each key a bare host name (no scheme, port or path), each token a string",
    ),
  /** 32+ characters; encrypts per-request repository tokens while they sit in Redis. */
  SECRET_KEY: z.string().min(32).optional(),

  AUTH_MODE: z.enum(["off", "api_key"]).default("off"),
  /** Comma-separated `name:key` pairs; hashed at boot, never kept in clear. */
  API_KEYS: z.string().optional(),
  /** A file with one `name:key` or `name:sha256:<hex>` per line. */
  API_KEYS_FILE: z.string().optional(),
  /** Comma-separated key names (of API_KEYS) that may read every key's jobs: an on-call operator's. */
  API_OPERATORS: z
    .string()
    .optional()
    .transform((v) => (v ? v.split(",").map((n) => n.trim()).filter(Boolean) : [])),
  /** Jobs submitted (each job of a batch counts) and uploads, per minute per key. */
  RATE_LIMIT_PER_MIN: int(0, 1_000_000).default(120),
  /** Reads (job status, waits, event streams, trajectories, cancels, upload lookups), per minute per key. */
  POLL_RATE_LIMIT_PER_MIN: int(0, 1_000_000).default(600),
  MAX_OPEN_JOBS_PER_KEY: int(0, 100_000).default(500),
  /** Megabytes of JSON request bodies per minute per key, charged before they are read (0: no limit). */
  BODY_MB_PER_MIN: int(0, 1_000_000).default(64),
  /** JSON request bodies one key may be sending to one API process at once (0: no limit). */
  BODIES_AT_ONCE_PER_KEY: int(0, 100_000).default(32),

  WEBHOOK_SECRET: z.string().min(16).optional(),
  WEBHOOK_MAX_ATTEMPTS: int(1, 20).default(6),
});

export type Config = Readonly<z.infer<typeof envSchema>>;

/**
 * Episodes one GPU serves fastest at once (CodeScout-4B, one H100 80 GB): beyond this,
 * conversations evict each other's prefix cache and throughput falls (bench/inflight.ts,
 * BENCHMARKS.md). A worker with a model server takes this many jobs; the queue holds the rest.
 */
export const EPISODES_PER_GPU = 20;

/**
 * Jobs a worker runs at once unless WORKER_CONCURRENCY says: with a model server, one GPU's
 * knee (the model is the bottleneck, a job waiting on it costs ~8 MB); without, one per core,
 * because the baseline policy's scan and outline are CPU-bound.
 */
export function workerConcurrency(config: Pick<Config, "WORKER_CONCURRENCY" | "MODEL_BASE_URL">, cores = availableParallelism()): number {
  return config.WORKER_CONCURRENCY ?? (config.MODEL_BASE_URL ? EPISODES_PER_GPU : Math.max(1, cores));
}

export class ConfigError extends Error {
  override name = "ConfigError";
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  // An empty variable means "not set" so that `FOO= cmd` falls back to the default.
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ""));
  const parsed = envSchema.safeParse(present);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join(".")}: ${i.message}`);
    throw new ConfigError(`invalid environment:\n${lines.join("\n")}`);
  }
  return Object.freeze(parsed.data);
}

/** Parses config at an entry point; a bad value ends the process with the variable's name. */
export function loadConfigOrExit(env: NodeJS.ProcessEnv = process.env): Config {
  try {
    return loadConfig(env);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(1);
  }
}

/**
 * A token is looked up by the repository URL's host name: a key written as a URL or with a port
 * would match nothing, and git would go unauthenticated, failing later and far from the cause.
 */
function isHostTokens(raw: string): boolean {
  try {
    const parsed = JSON.parse(raw) as unknown;
    if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) return false;
    return Object.entries(parsed).every(([host, token]) => /^([a-z0-9-]+\.)*[a-z0-9-]+$|^\[[0-9a-f:.]+\]$/i.test(host) && typeof token === "string" && token.length > 0);
  } catch {
    return false;
  }
}
