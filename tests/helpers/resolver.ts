import type { Resolver } from "../../src/queue/hostPolicy.js";

/**
 * A resolver the test controls, injected where the service takes its resolver (the way it
 * takes config). Each name answers from a list of answers in turn (the last one repeats),
 * so a test can make the second lookup differ from the first; it records every lookup.
 */
export type Answer = string[] | "fail" | "hang";

export interface ScriptedResolver {
  resolve: Resolver;
  lookups: string[];
}

export function scriptedResolver(answers: Record<string, Answer[]>): ScriptedResolver {
  const lookups: string[] = [];
  const seen = new Map<string, number>();
  const resolve: Resolver = async (host) => {
    lookups.push(host);
    const n = seen.get(host) ?? 0;
    seen.set(host, n + 1);
    const list = answers[host];
    const answer = list ? list[Math.min(n, list.length - 1)]! : "fail";
    if (answer === "hang") return new Promise<string[]>(() => undefined);
    if (answer === "fail") throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: "ENOTFOUND" });
    return answer;
  };
  return { resolve, lookups };
}

/** Public names the API tests use, answered without a network. */
export const PUBLIC_NAMES: Record<string, Answer[]> = {
  "github.com": [["140.82.112.3"]],
  "dev.azure.com": [["13.107.42.20"]],
  "example.com": [["93.184.215.14"]],
  "hooks.example.com": [["93.184.215.15"]],
};
