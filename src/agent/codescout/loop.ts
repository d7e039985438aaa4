import type { ChatCompletionMessageParam, ChatCompletionMessageToolCall } from "openai/resources/chat/completions";
import { emptyUsage, keepSteps, type FinishReason, type Location, type Policy, type PolicyContext, type PolicyResult, type TrajectoryStep } from "../policy.js";
import { ModelError, type ChatRequest, type ModelClient } from "./modelClient.js";
import { renderPrompt, type PromptPack } from "./prompts.js";
import { parseRawToolCalls } from "./rawToolCalls.js";
import { FINISH_TOOL, TOOLS, parseToolCall } from "./tools.js";

/**
 * The CodeScout episode, shaped like the loop the model was trained in: system and user
 * messages, then per turn one assistant message and one tool message per call, in call
 * order, against a budget of model calls. What we add (recovery, lenient parsing, context
 * and stuck guards) only ever acts where the training loop would have ended with nothing.
 */

export interface CodeScoutSettings {
  client: ModelClient;
  prompts: PromptPack;
  maxTurns: number;
  temperature: number;
  finishPolicy: "recover" | "strict";
  /** The served model's window (vLLM --max-model-len). */
  contextWindow: number;
  /** Room kept free for the model's reply when judging whether the next prompt fits. */
  replyReserveTokens: number;
  /** Identical actions with identical observations this many times in a row end the episode. */
  stuckRepeats: number;
}

export const CODESCOUT_DEFAULTS = {
  maxTurns: 10,
  temperature: 0.6,
  finishPolicy: "recover",
  contextWindow: 40_960,
  replyReserveTokens: 4_096,
  stuckRepeats: 4,
} as const;

interface ToolCallLike {
  id: string;
  name: string;
  arguments: string;
}

type Message = ChatCompletionMessageParam & { name?: string };

const CONTEXT_FULL_NOTE = "[Output omitted: the context window is full.]";

export class CodeScoutPolicy implements Policy {
  readonly name = "codescout" as const;

  constructor(private readonly settings: CodeScoutSettings) {}

  async run(ctx: PolicyContext): Promise<PolicyResult> {
    const trajectory: TrajectoryStep[] = [];
    try {
      return await this.episode(ctx, trajectory);
    } catch (err) {
      throw keepSteps(err, trajectory);
    }
  }

  private async episode(ctx: PolicyContext, trajectory: TrajectoryStep[]): Promise<PolicyResult> {
    const s = this.settings;
    const vars = { working_dir: ctx.workingDir, issue: ctx.issue };
    const messages: Message[] = [
      { role: "system", content: renderPrompt(s.prompts.system, vars) },
      { role: "user", content: renderPrompt(s.prompts.user, vars) },
    ];
    const usage = emptyUsage();
    trajectory.push(...messages.map((m): TrajectoryStep => ({ at: now(), kind: "request", role: m.role, content: m.content })));
    let lastTokens = 0; // prompt + completion of the last reply: the next prompt's floor
    let pendingChars = 0; // tool output added since the last reply
    let ending: FinishReason | null = null;
    let answer: Location[] | null = null;
    let turns = 0;
    const signatures: string[] = [];

    const ask = async (turn: number, extra: Partial<ChatRequest> = {}) => {
      const request: ChatRequest = {
        messages: messages as ChatCompletionMessageParam[],
        tools: TOOLS as unknown as ChatRequest["tools"],
        temperature: s.temperature,
        top_p: 1.0,
        chat_template_kwargs: { enable_thinking: false },
        ...extra,
      };
      const asked = performance.now();
      const { completion, durationMs } = await s.client.complete(request, ctx.signal, ctx.deadlineAt).catch((err: unknown) => {
        // The failed request counts too: a fallback's answer reports what the model cost before it.
        usage.modelCalls++;
        usage.modelMs += performance.now() - asked;
        throw err instanceof ModelError ? err.withUsage(usage) : err;
      });
      usage.modelCalls++;
      usage.modelMs += durationMs;
      const u = completion.usage;
      usage.promptTokens += u?.prompt_tokens ?? 0;
      usage.completionTokens += u?.completion_tokens ?? 0;
      lastTokens = (u?.prompt_tokens ?? 0) + (u?.completion_tokens ?? 0);
      pendingChars = 0;
      const message = completion.choices[0]?.message;
      let text = message?.content ?? "";
      let calls: ToolCallLike[] = (message?.tool_calls ?? [])
        .filter((c): c is ChatCompletionMessageToolCall & { type: "function" } => c.type === "function")
        .map((c) => ({ id: c.id, name: c.function.name, arguments: c.function.arguments }));
      let lenient = false;
      if (calls.length === 0 && text.includes("<tool_call>")) {
        const raw = parseRawToolCalls(text);
        calls = raw.calls.map((c, i) => ({ id: `call_${turn}_${i}_lenient`, ...c }));
        lenient = calls.length > 0;
        // Blocks none of which could be read stay in the history as the model wrote them.
        if (lenient) text = raw.text;
      }
      trajectory.push({
        at: now(),
        kind: "response",
        turn,
        durationMs: Math.round(durationMs),
        content: message?.content ?? null,
        tool_calls: calls,
        lenient_parse: lenient,
        finish_reason: completion.choices[0]?.finish_reason ?? null,
        usage: u ?? null,
      });
      const assistant: Message = { role: "assistant", content: text.trim() ? text : null };
      if (calls.length) {
        (assistant as { tool_calls?: unknown }).tool_calls = calls.map((c) => ({ id: c.id, type: "function", function: { name: c.name, arguments: c.arguments } }));
      }
      messages.push(assistant);
      return calls;
    };

    const wouldOverflow = () => lastTokens + Math.ceil(pendingChars / 3) > s.contextWindow - s.replyReserveTokens;

    try {
      for (let turn = 1; turn <= s.maxTurns; turn++) {
        if (turn > 1 && wouldOverflow()) {
          ending = "context_exhausted";
          break;
        }
        ctx.onEvent({ type: "turn", turn, maxTurns: s.maxTurns });
        turns = turn;
        const calls = await ask(turn);
        if (calls.length === 0) {
          // A blank reply (no text, no call) is not an answer: the reference loop asked again,
          // the turn spent, with the history as it was.
          if (messages.at(-1)?.content === null) {
            messages.pop();
            continue;
          }
          ending = "text_reply";
          break;
        }
        const signatureParts: string[] = [];
        for (const call of calls) {
          const parsed = parseToolCall(call.name, call.arguments);
          if (parsed.tool === "finish") {
            answer = parsed.locations;
            ending = "finish_tool";
            trajectory.push({ at: now(), kind: "tool", turn, tool_call_id: call.id, name: call.name, arguments: call.arguments, alone: calls.length === 1 });
            break;
          }
          let content: string;
          if (parsed.tool === "terminal") {
            ctx.onEvent({ type: "command", turn, maxTurns: s.maxTurns, command: parsed.call.command });
            const result = await ctx.terminal.run(parsed.call, ctx.signal);
            usage.toolMs += result.durationMs;
            content = result.parts.join("\n");
            trajectory.push({
              at: now(),
              kind: "tool",
              turn,
              tool_call_id: call.id,
              name: call.name,
              arguments: call.arguments,
              security_risk: parsed.securityRisk ?? null,
              exit_code: result.exitCode,
              observation: content,
              durationMs: Math.round(result.durationMs),
            });
          } else {
            content = parsed.message;
            trajectory.push({ at: now(), kind: "tool", turn, tool_call_id: call.id, name: call.name, arguments: call.arguments, error: content });
          }
          messages.push({ role: "tool", tool_call_id: call.id, name: call.name, content });
          pendingChars += content.length;
          signatureParts.push(`${call.name}\u0000${call.arguments}\u0000${content}`);
        }
        if (ending === "finish_tool") break;
        signatures.push(signatureParts.join("\u0001"));
        const recent = signatures.slice(-s.stuckRepeats);
        if (recent.length === s.stuckRepeats && recent.every((sig) => sig === recent[0])) {
          ending = "stuck";
          break;
        }
      }
    } catch (err) {
      if (!(err instanceof ModelError && err.reason === "context_length")) throw err;
      ending = "context_exhausted";
    }
    ending ??= "budget_exhausted";

    if (answer === null && s.finishPolicy === "recover") {
      const recovered = await this.recover(messages, ending, wouldOverflow(), turns + 1, ask, trajectory, vars);
      if (recovered) {
        answer = recovered;
        trajectory.push({ at: now(), kind: "tool", turn: turns + 1, recovered_from: ending });
        ending = "recovered";
      }
    }
    return { policy: "codescout", locations: answer, finishReason: ending, turns, usage, trajectory };
  }

  private async recover(
    messages: Message[],
    ending: FinishReason,
    /** The last outputs would not fit beside the question, whatever ended the episode (its last turn's outputs, say). */
    full: boolean,
    turn: number,
    ask: (turn: number, extra?: Partial<ChatRequest>) => Promise<ToolCallLike[]>,
    trajectory: TrajectoryStep[],
    vars: { working_dir: string; issue: string },
  ): Promise<Location[] | null> {
    if (ending === "context_exhausted" || full) {
      // Make room for the question by dropping the outputs the model has not seen yet.
      for (let i = messages.length - 1; i >= 0 && messages[i]!.role === "tool"; i--) messages[i]!.content = CONTEXT_FULL_NOTE;
    }
    const content = renderPrompt(this.settings.prompts.recovery, vars);
    messages.push({ role: "user", content });
    trajectory.push({ at: now(), kind: "request", role: "user", content, recovery: true, ended_by: ending });
    try {
      const calls = await ask(turn, { tool_choice: { type: "function", function: { name: FINISH_TOOL } } });
      for (const call of calls) {
        const parsed = parseToolCall(call.name, call.arguments);
        if (parsed.tool === "finish") return parsed.locations;
      }
    } catch (err) {
      // A question the server refused (too long, malformed) is no worse than no answer. The
      // server away, slow or the job cancelled is the job's failure as at any turn (where the
      // service chose the model, the baseline then answers), and anything else is a fault.
      if (!(err instanceof ModelError) || (err.reason !== "context_length" && err.reason !== "llm_bad_request")) throw err;
      trajectory.push({ at: now(), kind: "response", turn, error: (err as Error).message });
    }
    return null;
  }
}

const now = () => new Date().toISOString();
