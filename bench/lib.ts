import { mkdirSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { cpus, totalmem } from "node:os";

/** Shared bits of the benchmark scripts: statistics, tables, results files. */
export const quick = process.argv.includes("--quick");

/** Nearest-rank percentiles. Of no samples, NaN (null in the results' JSON): a 0 there read as a measurement. */
export function stats(samples: number[]) {
  const s = [...samples].sort((a, b) => a - b);
  const q = (p: number) => (s.length ? s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]! : Number.NaN);
  return { n: s.length, p50: q(0.5), p95: q(0.95), p99: q(0.99), min: s[0] ?? Number.NaN, max: s.at(-1) ?? Number.NaN };
}

export async function time<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const t = performance.now();
  const v = await fn();
  return [performance.now() - t, v];
}

export function machine() {
  return {
    cpus: cpus().length,
    cpu_model: cpus()[0]?.model ?? "",
    mem_gib: Math.round(totalmem() / 2 ** 30),
    docker: execFileSync("docker", ["version", "--format", "{{.Server.Version}}"], { encoding: "utf8" }).trim(),
    node: process.version,
    at: new Date().toISOString(),
  };
}

export function report(name: string, data: Record<string, unknown>) {
  mkdirSync("bench/results", { recursive: true });
  writeFileSync(`bench/results/${name}.json`, `${JSON.stringify({ machine: machine(), quick, ...data }, null, 2)}\n`);
  process.stdout.write(`${name}: ${JSON.stringify(data, null, 2)}\n`);
}

export const ms = (x: number) => Math.round(x * 10) / 10;
