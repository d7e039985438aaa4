import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * The only stand-in in our tests: a real HTTP server speaking the OpenAI chat-completions
 * API whose replies are scripted, tool calls included. It records every request body.
 */

export interface ScriptedToolCall {
  name: string;
  arguments: Record<string, unknown> | string;
  id?: string;
}

export type ScriptedReply =
  | { toolCalls: ScriptedToolCall[]; content?: string | null; usage?: { prompt_tokens: number; completion_tokens: number } }
  | { content: string; usage?: { prompt_tokens: number; completion_tokens: number } }
  | { status: number; body?: unknown; headers?: Record<string, string> }
  | { hang: true }
  /** A body as it is, not a chat completion (a proxy's error page, a garbled reply). */
  | { raw: string; status?: number; headers?: Record<string, string> }
  /** Headers at once, then one byte of a reply every 200 ms, never ending. */
  | { trickle: true }
  | { delayMs: number; then: ScriptedReply };

export interface RecordedRequest {
  body: Record<string, unknown> & { messages: Array<Record<string, unknown>> };
  headers: IncomingMessage["headers"];
  at: number;
}

export interface FakeModel {
  url: string;
  baseURL: string;
  requests: RecordedRequest[];
  /** Replace the script; replies are served in order, the last one repeats. */
  script(replies: ScriptedReply[] | ((req: RecordedRequest, index: number) => ScriptedReply)): void;
  close(): Promise<void>;
}

let callCounter = 0;

export async function startFakeModel(initial: ScriptedReply[] = []): Promise<FakeModel> {
  let script: ScriptedReply[] | ((req: RecordedRequest, index: number) => ScriptedReply) = initial;
  const requests: RecordedRequest[] = [];
  const sockets = new Set<import("node:net").Socket>();

  const pick = (req: RecordedRequest, index: number): ScriptedReply => {
    if (typeof script === "function") return script(req, index);
    return script[Math.min(index, script.length - 1)] ?? { content: "no script" };
  };

  const respond = async (reply: ScriptedReply, res: ServerResponse, model: string) => {
    if ("hang" in reply) return; // never answers; the client must time out or abort
    if ("raw" in reply) {
      res.writeHead(reply.status ?? 200, { "content-type": "application/json", ...reply.headers });
      res.end(reply.raw);
      return;
    }
    if ("trickle" in reply) {
      res.writeHead(200, { "content-type": "application/json" });
      const drip = setInterval(() => res.write(" "), 200);
      res.on("close", () => clearInterval(drip));
      return;
    }
    if ("delayMs" in reply) {
      await new Promise((r) => setTimeout(r, reply.delayMs));
      return respond(reply.then, res, model);
    }
    if ("status" in reply) {
      res.writeHead(reply.status, { "content-type": "application/json", ...reply.headers });
      res.end(JSON.stringify(reply.body ?? { error: { message: `scripted ${reply.status}`, type: "error" } }));
      return;
    }
    const usage = reply.usage ?? { prompt_tokens: 1000, completion_tokens: 50 };
    const message: Record<string, unknown> = { role: "assistant", content: reply.content ?? null };
    if ("toolCalls" in reply) {
      message.tool_calls = reply.toolCalls.map((c) => ({
        id: c.id ?? `call_${++callCounter}`,
        type: "function",
        function: { name: c.name, arguments: typeof c.arguments === "string" ? c.arguments : JSON.stringify(c.arguments) },
      }));
    }
    res.writeHead(200, { "content-type": "application/json" });
    res.end(
      JSON.stringify({
        id: `chatcmpl-${callCounter}`,
        object: "chat.completion",
        created: Math.floor(Date.now() / 1000),
        model,
        choices: [{ index: 0, message, finish_reason: "toolCalls" in reply ? "tool_calls" : "stop" }],
        usage: { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens },
      }),
    );
  };

  const server: Server = createServer((req, res) => {
    let raw = "";
    req.on("data", (d: Buffer) => (raw += d.toString("utf8")));
    req.on("end", () => {
      if (req.method === "GET" && req.url?.endsWith("/models")) {
        res.writeHead(200, { "content-type": "application/json" });
        // As vLLM lists what it serves.
        res.end(JSON.stringify({ object: "list", data: [{ id: "OpenHands/CodeScout-4B", object: "model", owned_by: "vllm", max_model_len: 40960 }] }));
        return;
      }
      if (req.method !== "POST" || !req.url?.endsWith("/chat/completions")) {
        res.writeHead(404).end();
        return;
      }
      const recorded: RecordedRequest = { body: JSON.parse(raw), headers: req.headers, at: Date.now() };
      requests.push(recorded);
      void respond(pick(recorded, requests.length - 1), res, String(recorded.body.model ?? "model"));
    });
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    baseURL: `${url}/v1`,
    requests,
    script(next) {
      script = next;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
