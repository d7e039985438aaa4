import { randomUUID } from "node:crypto";
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from "fastify";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { isInitializeRequest } from "@modelcontextprotocol/sdk/types.js";
import type { AppContext } from "../api/context.js";
import { ApiError } from "../api/errors.js";
import { API_VERSION } from "../version.js";
import { InProcessBackend } from "./inProcess.js";
import { registerLocalizePrompt } from "./prompt.js";
import { registerLocalizeTool } from "./tool.js";

/**
 * MCP over Streamable HTTP at /mcp, behind the same API keys as the REST routes. Each
 * session is an MCP server bound to the key that opened it; its `localize` tool calls what
 * POST /v1/localize calls, so limits, validation and the job store are the same. Sessions
 * live in this API process (cancellation and progress need the session that holds the
 * call), so replicas behind a load balancer route by the Mcp-Session-Id header.
 */
export interface McpHttpOptions {
  /** A session unused this long is closed. */
  idleMs: number;
  maxSessions: number;
}

interface Session {
  transport: StreamableHTTPServerTransport;
  owner: string;
  seen: number;
}

export function mcpRoutes(ctx: AppContext, options: McpHttpOptions): FastifyPluginAsync {
  return async (app) => {
    const sessions = new Map<string, Session>();
    const sweep = setInterval(() => {
      const idleBefore = Date.now() - options.idleMs;
      for (const s of sessions.values()) if (s.seen < idleBefore) void s.transport.close();
    }, Math.min(60_000, options.idleMs));
    sweep.unref();
    app.addHook("onClose", async () => {
      clearInterval(sweep);
      await Promise.all([...sessions.values()].map((s) => s.transport.close().catch(() => undefined)));
    });

    const open = async (owner: string): Promise<Session> => {
      if (sessions.size >= options.maxSessions) throw new ApiError(503, "too_many_sessions", "this API process holds its maximum of MCP sessions; retry shortly", undefined, { "retry-after": "5" });
      const server = new McpServer({ name: "codescout", version: API_VERSION }, { capabilities: { tools: {}, prompts: {} } });
      registerLocalizeTool(server, new InProcessBackend(ctx, owner), { localPaths: false });
      registerLocalizePrompt(server, { localPaths: false });
      const session: Session = { owner, seen: Date.now(), transport: undefined as unknown as StreamableHTTPServerTransport };
      session.transport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id) => void sessions.set(id, session),
      });
      session.transport.onclose = () => {
        if (session.transport.sessionId) sessions.delete(session.transport.sessionId);
        void server.close().catch(() => undefined);
      };
      await server.connect(session.transport);
      return session;
    };

    const handle = async (request: FastifyRequest, reply: FastifyReply) => {
      await ctx.limits.takePoll(request.owner);
      const header = request.headers["mcp-session-id"];
      let session = typeof header === "string" ? sessions.get(header) : undefined;
      // Another key's session is answered as one that does not exist.
      if (typeof header === "string" && (!session || session.owner !== request.owner)) return rpcError(reply, 404, -32001, "Session not found");
      if (!session) {
        if (request.method !== "POST" || !isInitializeRequest(request.body)) return rpcError(reply, 400, -32000, "Bad Request: no valid Mcp-Session-Id; start with initialize");
        session = await open(request.owner);
      }
      session.seen = Date.now();
      reply.hijack();
      await session.transport.handleRequest(request.raw, reply.raw, request.body);
    };

    for (const method of ["POST", "GET", "DELETE"] as const) {
      app.route({ method, url: "/mcp", preHandler: ctx.authenticate, schema: { hide: true }, handler: handle });
    }
  };
}

function rpcError(reply: FastifyReply, status: number, code: number, message: string) {
  return reply.code(status).send({ jsonrpc: "2.0", error: { code, message }, id: null });
}
