import { createHash } from "node:crypto";

/**
 * The identity of an uploaded working tree: SHA-256 over its sorted entries (path, kind,
 * executable bit, content hash or link target). Timestamps, owners, entry order and
 * compression do not count, so the same tree uploaded twice is stored once, and a client
 * can compute the id before sending anything and ask whether the service already has it.
 * Directories count only through the files in them, as in git.
 */
export type TreeEntry =
  | { kind: "file"; path: string; executable: boolean; sha256: string }
  | { kind: "link"; path: string; target: string };

export function treeDigest(entries: readonly TreeEntry[]): string {
  const lines = entries.map((e) => (e.kind === "file" ? `F ${e.executable ? "755" : "644"} ${e.sha256} ${e.path}` : `L ${sha256(e.target)} ${e.path}`));
  // Sorted by path bytes, so every client and server orders entries the same way.
  const keyed = entries.map((e, i) => ({ key: Buffer.from(e.path), line: lines[i]! }));
  keyed.sort((a, b) => Buffer.compare(a.key, b.key));
  const hash = createHash("sha256").update("codescout-tree-v1\n");
  for (const { line } of keyed) hash.update(`${line}\n`);
  return hash.digest("hex");
}

const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");
