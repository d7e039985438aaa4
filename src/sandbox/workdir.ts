import { randomBytes } from "node:crypto";

/**
 * The working directory in the training layout, /tmp/testbed/<8 hex>/<owner>_<repo>_<id>:
 * the model saw exactly this shape in its prompts and in every observation. Each part at most
 * 64 characters, so the last segment stays within the 200 the sandbox takes (docker.ts).
 */
export function makeWorkingDir(owner: string, repo: string, instanceId: string): string {
  const clean = (s: string) => s.replace(/[^A-Za-z0-9._-]/g, "_").slice(0, 64) || "x";
  return `/tmp/testbed/${randomBytes(4).toString("hex")}/${clean(owner)}_${clean(repo)}_${clean(instanceId)}`;
}
