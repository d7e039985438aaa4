import { randomUUID } from "node:crypto";
import type { ServerResponse } from "node:http";
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from "fastify";
import { getRequestListener } from "@hono/node-server";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { MAX_BATCH_SIZE } from "@modelcontextprotocol/sdk/server/requestBody.js";
import { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js";
import { CancelledNotificationSchema, isInitializeRequest, LATEST_PROTOCOL_VERSION, SUPPORTED_PROTOCOL_VERSIONS } from "@modelcontextprotocol/sdk/types.js";
import { cancelJob } from "../api/cancel.js";
import type { AppContext } from "../api/context.js";
import { ApiError } from "../api/errors.js";
import { API_VERSION } from "../version.js";
import { McpCallJobs } from "./calls.js";
import { InProcessBackend } from "./inProcess.js";
import { registerLocalizePrompt, serverInstructions } from "./prompt.js";
import { registerLocalizeTool } from "./tool.js";
import { SERVICE_ID_RE } from "../queue/contract.js";

/**
 * MCP over Streamable HTTP at /mcp, behind the same API keys as the REST routes. Each
 * session is an MCP server bound to the key that opened it; its `localize` tool calls what
 * POST /v1/localize calls, so limits, validation and the job store are the same.
 *
 * Sessions live in this API process, but nothing an agent needs is kept in one: every job is
 * in the job store, and the job a held call follows is in Redis too (McpCallJobs), so a
 * cancellation cancels it whichever process the client's notification reaches. So a session this process does not hold (it was made by the process before a
 * restart, by another replica, or closed as idle) is made again under the id the client
 * sends, for the key that sends it, rather than answered 404: the spec says a client should
 * then start a new session, but the SDKs' clients (TypeScript's, Python's, and agents built
 * on them) do not, and every agent connected would stay broken after each deploy until its
 * user restarted it. A live session of another key is still answered as one that does not exist.
 */
export interface McpHttpOptions {
  /** A session unused this long is closed. */
  idleMs: number;
  maxSessions: number;
  /** An answer its client has not read any of for this long is cut (its connection closed). */
  unreadMs: number;
}

interface Session {
  transport: WebStandardStreamableHTTPServerTransport;
  owner: string;
  seen: number;
  /** POSTs in progress (a held tool call among them): such a session is never closed to make room. */
  busy: number;
}


export function mcpRoutes(ctx: AppContext, options: McpHttpOptions): FastifyPluginAsync {
  return async (app) => {
    const sessions = new Map<string, Session>();
    const calls = new McpCallJobs(ctx.redis, ctx.config.QUEUE_PREFIX, ctx.config.JOB_TTL_S);
    // A client's GET stream and its next POST can both arrive with an id this process lacks.
    const restoring = new Map<string, Promise<Session>>();
    const sweep = setInterval(() => {
      const idleBefore = Date.now() - options.idleMs;
      // A session with a call in progress is not idle, however long the call: closing it aborted
      // the call, cancelled its job, and the client waited for an answer that never came.
      for (const s of sessions.values()) if (s.busy === 0 && s.seen < idleBefore) void s.transport.close();
    }, Math.min(60_000, options.idleMs));
    sweep.unref();
    // A session's GET stream carries nothing a call needs (a call's progress comes on its own
    // POST): ended as the API starts closing, like the job event streams, so it does not hold
    // the closing until the cut. Held calls keep their grace (InProcessBackend).
    ctx.shutdown.closing.addEventListener("abort", () => {
      for (const s of sessions.values()) s.transport.closeStandaloneSSEStream();
    });
    app.addHook("onClose", async () => {
      clearInterval(sweep);
      await Promise.all([...sessions.values()].map((s) => s.transport.close().catch(() => undefined)));
    });

    /**
     * At the cap, the session unused longest with no call in progress is closed to make room:
     * its client's next request makes it again (see above), so one key opening sessions (any
     * fresh UUID is one) cannot lock every other key out, as refusing new ones did.
     */
    const makeRoom = async () => {
      if (sessions.size < options.maxSessions) return;
      let oldest: Session | undefined;
      for (const s of sessions.values()) if (s.busy === 0 && (!oldest || s.seen < oldest.seen)) oldest = s;
      if (!oldest) throw new ApiError(503, "too_many_sessions", "this API process holds its maximum of MCP sessions, each with a call in progress; retry shortly", undefined, { "retry-after": "5" });
      await oldest.transport.close();
    };

    const open = async (owner: string, restore?: { id: string; protocolVersion: string }): Promise<Session> => {
      await makeRoom();
      const server = new McpServer({ name: "codescout", version: API_VERSION }, { capabilities: { tools: {}, prompts: {} }, instructions: serverInstructions({ localPaths: false }) });
      registerLocalizeTool(server, new InProcessBackend(ctx, owner, calls), { localPaths: false });
      registerLocalizePrompt(server, { localPaths: false });
      const session: Session = { owner, seen: Date.now(), busy: 0, transport: undefined as unknown as WebStandardStreamableHTTPServerTransport };
      session.transport = new WebStandardStreamableHTTPServerTransport({
        sessionIdGenerator: () => restore?.id ?? randomUUID(),
        onsessioninitialized: (id) => void sessions.set(id, session),
      });
      session.transport.onclose = () => {
        if (session.transport.sessionId && sessions.get(session.transport.sessionId) === session) sessions.delete(session.transport.sessionId);
        void server.close().catch(() => undefined);
      };
      await server.connect(session.transport);
      if (restore) {
        // The session is made again the way the client made it first: an initialize, here of
        // our own, at the protocol version the client says it speaks. Its answer goes nowhere.
        const answer = await session.transport.handleRequest(
          new Request("http://localhost/mcp", {
            method: "POST",
            headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
            body: JSON.stringify({ jsonrpc: "2.0", id: "codescout-restore", method: "initialize", params: { protocolVersion: restore.protocolVersion, capabilities: {}, clientInfo: { name: "restored-session", version: "0" } } }),
          }),
        );
        await answer.text();
        if (!answer.ok || session.transport.sessionId !== restore.id) {
          await session.transport.close();
          throw new ApiError(503, "session_not_restored", "the MCP session could not be made again; start a new one (initialize)");
        }
      }
      return session;
    };

    const restored = (owner: string, id: string, protocolVersion: string): Promise<Session> => {
      let pending = restoring.get(id);
      if (!pending) {
        pending = open(owner, { id, protocolVersion }).finally(() => restoring.delete(id));
        restoring.set(id, pending);
      }
      return pending;
    };

    const handle = async (request: FastifyRequest, reply: FastifyReply) => {
      await ctx.limits.takePoll(request.owner);
      const header = request.headers["mcp-session-id"];
      const id = typeof header === "string" ? header : undefined;
      let session = id ? (sessions.get(id) ?? (await restoring.get(id)?.catch(() => undefined))) : undefined;
      // Another key's session is answered as one that does not exist.
      if (session && session.owner !== request.owner) return rpcError(reply, 404, -32001, "Session not found");
      if (!session) {
        const initialize = request.method === "POST" && isInitializeRequest(request.body);
        if (initialize) session = await open(request.owner);
        // Ending a session this process does not hold ends nothing; an id not of ours is not made.
        // Only an id of the form this process hands out is made again.
        else if (id && request.method !== "DELETE" && SERVICE_ID_RE.test(id)) {
          const asked = request.headers["mcp-protocol-version"];
          const version = typeof asked === "string" && SUPPORTED_PROTOCOL_VERSIONS.includes(asked) ? asked : LATEST_PROTOCOL_VERSION;
          session = await restored(request.owner, id, version);
          if (session.owner !== request.owner) return rpcError(reply, 404, -32001, "Session not found");
          request.log.info({ owner: request.owner }, "an MCP session this process did not hold was made again under its id");
        } else if (id) return rpcError(reply, 404, -32001, "Session not found");
        else return rpcError(reply, 400, -32000, "Bad Request: no valid Mcp-Session-Id; start with initialize");
      }
      session.seen = Date.now();
      // A cancellation reaches its call's job here too: the call may be held by another process.
      if (request.method === "POST" && id) await cancelHeldElsewhere(request.owner, id, request.body);
      const transport = session.transport;
      reply.hijack();
      // What the SDK's Node transport does for each request: the body is the one Fastify parsed.
      const listener = getRequestListener((webRequest) => transport.handleRequest(webRequest, { parsedBody: request.body }), { overrideGlobalObjects: false });
      // Busy while it has a tool call in progress: a session busy only flushing an answer its
      // client does not read (a batch of huge ids echoed back) would pin it against eviction.
      const counted = request.method === "POST" && messagesOf(request.body).some((m) => (m as { method?: unknown } | null)?.method === "tools/call");
      if (counted) session.busy++;
      // A client that never reads its answer (a batch of a failing call and pings with huge ids)
      // held its session busy for ever, and with the cap's worth of such sessions locked every
      // other key out of MCP: an answer nothing of which is taken for `unreadMs` is cut.
      const unread = cutIfUnread(reply.raw, options.unreadMs);
      try {
        await listener(request.raw, reply.raw);
      } finally {
        unread();
        // Idle from the end of its last call, not from its start.
        if (counted) session.busy--;
        session.seen = Date.now();
      }
    };

    const cancelHeldElsewhere = async (owner: string, session: string, body: unknown) => {
      for (const message of messagesOf(body)) {
        const cancelled = CancelledNotificationSchema.safeParse(message);
        const request = cancelled.success ? cancelled.data.params.requestId : undefined;
        if (request === undefined) continue;
        const job = await calls.jobOf(owner, session, request);
        // Where this process holds the call, the SDK aborts it too: a job cancels once.
        if (job) await cancelJob(ctx.store, ctx.events, job).catch(() => undefined);
      }
    };

    for (const method of ["POST", "GET", "DELETE"] as const) {
      app.route({ method, url: "/mcp", onRequest: ctx.authenticate, schema: { hide: true }, handler: handle });
    }
  };
}

function rpcError(reply: FastifyReply, status: number, code: number, message: string) {
  return reply.code(status).send({ jsonrpc: "2.0", error: { code, message }, id: null });
}

/**
 * A POST's JSON-RPC messages; none of a batch longer than the SDK takes (it refuses it): a batch
 * of 55,000 cancellations was 55,000 Redis lookups before that refusal.
 */
function messagesOf(body: unknown): unknown[] {
  if (!Array.isArray(body)) return [body];
  return body.length > MAX_BATCH_SIZE ? [] : body;
}

/**
 * Closes `res` once what is written to it has waited unread (its buffers full) for `ms`: a
 * client reading slowly drains some of it, and the wait starts again. Returns the stop.
 */
function cutIfUnread(res: ServerResponse, ms: number): () => void {
  let stuckSince: number | undefined;
  let left = res.writableLength;
  const timer = setInterval(() => {
    const stuck = res.writableNeedDrain && res.writableLength >= left;
    left = res.writableLength;
    if (!stuck) stuckSince = undefined;
    else if (stuckSince === undefined) stuckSince = Date.now();
    else if (Date.now() - stuckSince >= ms) res.destroy();
  }, Math.max(100, Math.min(5_000, ms / 4)));
  timer.unref();
  return () => clearInterval(timer);
}
