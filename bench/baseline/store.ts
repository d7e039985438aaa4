import { readFileSync } from "node:fs";
import type { Gathered } from "../../src/agent/baseline.js";

/** JSON with Maps kept as Maps, for the dumps of what the sandbox found. */
export function serialize(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (v instanceof Map ? { __map: [...v.entries()] } : v));
}

export function deserialize<T>(text: string): T {
  return JSON.parse(text, (_k, v: unknown) => (v && typeof v === "object" && "__map" in v ? new Map((v as { __map: [string, unknown][] }).__map) : v)) as T;
}

export interface Dumped {
  instance_id: string;
  repo: string;
  exec_ms: number[];
  gathered: Gathered;
}

export function loadDump(path: string): Map<string, Dumped> {
  const out = new Map<string, Dumped>();
  for (const line of readFileSync(path, "utf8").split("\n")) {
    if (!line.trim()) continue;
    const d = deserialize<Dumped>(line);
    // Dumps made before stop 58 hold no named files (none then answered) nor the count listed.
    d.gathered.scan.named ??= [];
    d.gathered.scan.listed ??= d.gathered.scan.paths.length;
    d.gathered.scan.cut ??= false;
    out.set(d.instance_id, d);
  }
  return out;
}
