import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { RootsListChangedNotificationSchema } from "@modelcontextprotocol/sdk/types.js";
import { CheckoutError, localizeCheckout } from "../client/checkout.js";
import { ServiceClient, ServiceRefused, ServiceUnreachable } from "../client/service.js";
import type { JobEvent } from "../store/events.js";
import { API_VERSION } from "../version.js";
import { registerLocalizePrompt, serverInstructions } from "./prompt.js";
import { withinAny } from "./roots.js";
import { describeEvent, LocalizeRefused, optionsOf, registerLocalizeTool, remoteRepoOf, toolField, type LocalizeBackend, type LocalizeRun, type LocalizeToolInput, type RunHooks } from "./tool.js";

/**
 * `codescout-mcp`: the MCP server a developer registers in their coding agent. It speaks
 * MCP over stdio and is a client of a CodeScout service (CODESCOUT_URL, CODESCOUT_API_KEY),
 * so it can localize in the developer's own checkout, uncommitted edits included.
 */
const USAGE = `usage: codescout-mcp [--url URL] [--path DIR]
  An MCP server over stdio with one tool, localize. Register it in your coding agent.
  --url   the CodeScout service (default: CODESCOUT_URL, else http://127.0.0.1:8080)
  --path  the checkout to localize in when a call names none (default: the client's first root, else the working directory)
  The API key comes from CODESCOUT_API_KEY.`;

function parse() {
  try {
    return parseArgs({ options: { url: { type: "string" }, path: { type: "string" }, help: { type: "boolean", default: false } }, strict: true }).values;
  } catch (err) {
    process.stderr.write(`codescout-mcp: ${(err as Error).message}\n${USAGE}\n`);
    process.exit(2);
  }
}
const args = parse();
if (args.help) {
  process.stderr.write(`${USAGE}\n`);
  process.exit(0);
}

const client = new ServiceClient(args.url ?? process.env.CODESCOUT_URL ?? "http://127.0.0.1:8080", process.env.CODESCOUT_API_KEY || undefined);
const server = new McpServer({ name: "codescout", version: API_VERSION }, { capabilities: { tools: {}, prompts: {} }, instructions: serverInstructions({ localPaths: true }) });

const QUIET_MS = 5_000;

/** Calls in progress: the agent quitting (stdin closed) cancels their jobs before the process ends. */
const running = new Set<{ stop: AbortController; done: Promise<unknown> }>();

class RestBackend implements LocalizeBackend {
  async run(input: LocalizeToolInput, hooks: RunHooks): Promise<LocalizeRun> {
    const stop = new AbortController();
    const work = this.follow(input, { ...hooks, signal: AbortSignal.any([hooks.signal, stop.signal]) });
    const entry = { stop, done: work.catch(() => undefined) };
    running.add(entry);
    try {
      return await work;
    } finally {
      running.delete(entry);
    }
  }

  private async follow(input: LocalizeToolInput, hooks: RunHooks): Promise<LocalizeRun> {
    let heard = Date.now();
    const onEvent = (event: JobEvent) => {
      heard = Date.now();
      const line = describeEvent(event);
      if (line) hooks.progress(line);
    };
    // As the API's own follower does: a job quiet for 5 s (a long model call) is a chance to say so again.
    const quiet = setInterval(() => {
      if (Date.now() - heard < QUIET_MS) return;
      heard = Date.now();
      hooks.idle?.();
    }, 1000);
    const request = { issue: input.issue, options: optionsOf(input) };
    try {
      if (input.repo_url || input.upload) {
        const view = await client.submit({ repo: remoteRepoOf(input), ...request });
        return { view: await client.follow(view, { signal: hooks.signal, onEvent }) };
      }
      // A checkout's changes are read from it; a diff beside it would be a second, conflicting account of them.
      if (input.patch) throw new LocalizeRefused("invalid_patch", "patch goes with repo_url: a local path sends its own uncommitted changes", "patch");
      // Nor another commit of it: the checkout is sent as it is now, and a commit asked for would be silently not what was read.
      if (input.commit !== undefined && input.commit !== "HEAD") throw new LocalizeRefused("invalid_commit", "commit goes with repo_url: a local path is read as it is now, its uncommitted changes included", "commit");
      const path = input.path ?? process.cwd();
      await checkWithinRoots(path);
      return await localizeCheckout(client, path, request, { signal: hooks.signal, onEvent, say: hooks.progress });
    } catch (err) {
      // The calling model cannot set a header: the key is this server's to send, from its env.
      if (err instanceof ServiceRefused && err.status === 401) throw new LocalizeRefused(err.code, `the service refused the API key codescout-mcp sent (${err.message}): set CODESCOUT_API_KEY in the env of this MCP server's entry in the client's config`);
      if (err instanceof ServiceRefused && err.status >= 400 && err.status < 500) throw new LocalizeRefused(err.code, err.message, toolField(err.field));
      if (err instanceof CheckoutError) throw new LocalizeRefused(`invalid_${err.field}`, err.message, err.field);
      // Never reached: misnamed, or not started. Reached before: down for longer than a restart takes.
      if (err instanceof ServiceUnreachable) {
        throw new LocalizeRefused("service_unreachable", client.reached ? `${err.message} (it answered before: it has been down for more than a minute)` : `${err.message} (is it running? CODESCOUT_URL names it)`);
      }
      throw err;
    } finally {
      clearInterval(quiet);
    }
  }
}

let knownRoots: Promise<string[]> | null = null;
server.server.setNotificationHandler(RootsListChangedNotificationSchema, () => {
  knownRoots = null;
});

/**
 * The client's file roots, where it declares it has roots (MCP's roots: the workspace it works
 * in); null where it does not. Declared but none readable (none given, the list refused, none a
 * file:// one) is an empty workspace, not an open one. A client that says when its roots change
 * is asked once until it does; one that does not, at each use (they may have changed unsaid).
 */
async function clientRoots(): Promise<string[] | null> {
  const declared = server.server.getClientCapabilities()?.roots;
  if (!declared) return null;
  const ask = () => server.server.listRoots().then((r) => fileRoots(r.roots));
  if (!declared.listChanged) return ask().catch(() => []);
  if (!knownRoots) {
    const asked = ask();
    knownRoots = asked;
    // A failed ask is not kept: the next call asks again.
    asked.catch(() => {
      if (knownRoots === asked) knownRoots = null;
    });
  }
  return knownRoots.catch(() => []);
}

/** The roots that are directories of this machine (a URI this platform cannot read as a path is none). */
function fileRoots(roots: Array<{ uri: string }>): string[] {
  return roots.flatMap((r) => {
    if (!r.uri.startsWith("file://")) return [];
    try {
      return [fileURLToPath(r.uri)];
    } catch {
      return [];
    }
  });
}

/**
 * A checkout is read and sent to the service: where the client says which directories are its
 * workspace, one outside them (another project on the machine, named by a model an issue's text
 * steered) is refused, as MCP asks of servers. The checkout given with --path is the user's own choice.
 */
async function checkWithinRoots(path: string): Promise<void> {
  const roots = await clientRoots();
  if (!roots) return;
  if (withinAny(path, [...roots, ...(args.path ? [args.path] : [])])) return;
  if (!roots.length) throw new LocalizeRefused("invalid_path", `the client declares a workspace (roots) but gave this server none it can read: open the project in the client, or give it as --path in this server's entry of the client's config`, "path");
  throw new LocalizeRefused("invalid_path", `${path} is outside the directories the client gave this server as its roots (${roots.join(", ")}): give a checkout inside them`, "path");
}

/** The checkout a call without `path` means: --path, else the client's first file root, else here. */
async function defaultPath(): Promise<string> {
  if (args.path) return args.path;
  return (await clientRoots())?.[0] ?? process.cwd();
}

registerLocalizeTool(server, new RestBackend(), { localPaths: true, defaultPath });
registerLocalizePrompt(server, { localPaths: true });
const transport = new StdioServerTransport();
// The agent quit (its user closed Claude Code, Cursor, Codex) with calls still held: their jobs
// are cancelled, each follow sending its DELETE before it returns, rather than left to run on
// the service, holding a worker and the key's open-job room. Bounded: the exit does not wait long.
let exiting = false;
const exit = async () => {
  if (exiting) return;
  exiting = true;
  for (const r of running) r.stop.abort();
  await Promise.race([Promise.allSettled([...running].map((r) => r.done)), new Promise((r) => setTimeout(r, 5_000).unref())]);
  process.exit(0);
};
transport.onclose = () => void exit();
process.stdin.on("end", () => void exit());
await server.connect(transport);
