import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { parseArgs } from "node:util";
import { Batcher, H100_CODESCOUT_4B, type EpisodeTrace, type GpuParams } from "./batcher.js";

/**
 * A GPU-like model server for benchmarks: an OpenAI chat-completions server whose replies
 * are scripted episodes and whose latency is a continuous-batching GPU's (./batcher.ts),
 * run against the wall clock. It runs in a process of its own, so the host it shares with
 * the worker slows its timers at worst, never its arithmetic: steps are timed on the
 * batcher's own clock, which only falls back to the wall clock when it would run ahead of it.
 *
 *   npx tsx bench/gpu/server.ts --script FILE [--port N] [--params JSON]
 *
 * FILE: {"turns": [["cmd", ...], ...], "finish": [{file, class_name?, function_name?}]}:
 * turn i answers with terminal calls running turn i's commands, then the finish call.
 * GET /stats answers the batcher's statistics, the time each conversation spent outside the
 * model between a reply and its next request, and each episode's token trace.
 */
const { values: a } = parseArgs({ options: { script: { type: "string" }, port: { type: "string", default: "0" }, params: { type: "string" } } });
if (!a.script) throw new Error("usage: server.ts --script FILE [--port N] [--params JSON]");
const script = JSON.parse(readFileSync(a.script, "utf8")) as { turns: string[][]; finish: Array<Record<string, string>> };
const params: GpuParams = { ...H100_CODESCOUT_4B, ...(a.params ? (JSON.parse(a.params) as Partial<GpuParams>) : {}) };

// Tokens from characters: Qwen's tokenizer averages ~3.5 characters a token on code and prose.
const CHARS_PER_TOKEN = 3.5;
type Message = { role: string; content?: string | null; tool_calls?: Array<{ function: { arguments: string } }> };
const tokensOf = (messages: Message[], tools: unknown) => {
  let chars = JSON.stringify(tools ?? []).length;
  for (const m of messages) {
    chars += (m.content ?? "").length + 8;
    for (const c of m.tool_calls ?? []) chars += c.function.arguments.length + 20;
  }
  return Math.ceil(chars / CHARS_PER_TOKEN);
};

let b = new Batcher(params);
let timer: NodeJS.Timeout | undefined;
let gpuClock = 0;
let lateness: number[] = [];
let resyncs = 0;
const deliveries: Array<() => void> = [];
const lastReplyAt = new Map<string, number>();
let outsideModelMs: number[] = [];
let outsideByTurn: number[][] = [];
let traces = new Map<string, EpisodeTrace>();
let firstRequestAt = 0;
let lastReplyEnd = 0;
let callCounter = 0;

function runFrom(start: number) {
  const d = b.step(start);
  if (d === 0) {
    timer = undefined;
    return;
  }
  const end = start + d;
  gpuClock = end;
  timer = setTimeout(() => {
    const now = performance.now();
    lateness.push(now - end);
    for (const deliver of deliveries.splice(0)) deliver();
    // Keep the GPU's own clock unless the host fell far behind it; then count the gap as idle.
    let next = end;
    if (now - end > 50) {
      next = now;
      resyncs++;
    }
    runFrom(next);
  }, Math.max(0, end - performance.now()));
}

function reply(res: ServerResponse, body: unknown) {
  res.writeHead(200, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

const server = createServer((req, res) => {
  let raw = "";
  req.on("data", (d: Buffer) => (raw += d.toString("utf8")));
  req.on("end", () => {
    if (req.method === "GET" && req.url?.endsWith("/models")) return reply(res, { object: "list", data: [{ id: "OpenHands/CodeScout-4B", object: "model" }] });
    if (req.method === "GET" && req.url === "/stats") {
      const wall = lastReplyEnd - firstRequestAt;
      return reply(res, { params, stats: { ...b.stats, queueWaitMs: undefined }, queue_wait_ms: b.stats.queueWaitMs, wall_ms: wall, busy_fraction: wall > 0 ? b.stats.busyMs / wall : 0, outside_model_ms: outsideModelMs, outside_model_ms_by_turn: outsideByTurn, timer_lateness_ms: lateness, resyncs, traces: [...traces.values()] });
    }
    if (req.method === "POST" && req.url === "/reset") {
      b = new Batcher(params);
      outsideModelMs = [];
      outsideByTurn = [];
      lateness = [];
      resyncs = 0;
      traces = new Map();
      lastReplyAt.clear();
      firstRequestAt = 0;
      return reply(res, { ok: true });
    }
    if (req.method !== "POST" || !req.url?.endsWith("/chat/completions")) return void res.writeHead(404).end();
    const arrived = performance.now();
    const body = JSON.parse(raw) as { messages: Message[]; tools?: unknown; model?: string };
    const user = body.messages.find((m) => m.role === "user")?.content ?? "";
    const conversation = createHash("sha256").update(user).digest("hex").slice(0, 16);
    const turn = body.messages.filter((m) => m.role === "assistant").length;
    const prev = lastReplyAt.get(conversation);
    if (prev !== undefined && turn > 0) {
      outsideModelMs.push(arrived - prev);
      (outsideByTurn[turn] ??= []).push(arrived - prev);
    }
    if (!firstRequestAt) firstRequestAt = arrived;
    const finishing = turn >= script.turns.length;
    // ~150 generated tokens a turn (100–199), fixed per conversation and turn.
    const completionTokens = 100 + (parseInt(createHash("sha256").update(`${conversation}:${turn}`).digest("hex").slice(0, 6), 16) % 100);
    const promptTokens = tokensOf(body.messages, body.tools);
    const trace = traces.get(conversation) ?? [];
    trace.push({ promptTokens, completionTokens });
    traces.set(conversation, trace);
    const calls = finishing
      ? [{ name: "localization_finish", arguments: { locations: script.finish } }]
      : script.turns[turn]!.map((command) => ({ name: "terminal", arguments: { command, security_risk: "LOW" } }));
    b.submit(
      {
        conversation,
        promptTokens,
        completionTokens,
        done: () =>
          deliveries.push(() => {
            const now = performance.now();
            lastReplyEnd = now;
            if (finishing) {
              lastReplyAt.delete(conversation);
              b.forget(conversation);
            } else lastReplyAt.set(conversation, now);
            reply(res, {
              id: `chatcmpl-${++callCounter}`,
              object: "chat.completion",
              created: Math.floor(Date.now() / 1000),
              model: body.model ?? "model",
              choices: [
                {
                  index: 0,
                  message: {
                    role: "assistant",
                    content: "Looking at the relevant code next.",
                    tool_calls: calls.map((c) => ({ id: `call_${++callCounter}`, type: "function", function: { name: c.name, arguments: JSON.stringify(c.arguments) } })),
                  },
                  finish_reason: "tool_calls",
                },
              ],
              usage: { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens },
            });
          }),
      },
      arrived,
    );
    if (!timer) runFrom(Math.max(arrived, gpuClock));
  });
});
server.keepAliveTimeout = 120_000;
server.listen(Number(a.port), "127.0.0.1", () => {
  process.stdout.write(`listening http://127.0.0.1:${(server.address() as AddressInfo).port}\n`);
});
