import { readFileSync } from "node:fs";
import { z } from "zod";
import { parseRepoUrl } from "../queue/repoUrl.js";

/** One benchmark instance in the shared/bench format (SWE-bench fields plus ground truth). */
export const instanceSchema = z.object({
  instance_id: z.string().min(1),
  repo: z.string().regex(/^[\w.-]+\/[\w.-]+$/, "repo must be owner/name"),
  base_commit: z.string().regex(/^[0-9a-f]{40}$/, "base_commit must be a 40-hex sha"),
  problem_statement: z.string().min(1),
  gt: z.object({ files: z.array(z.string()), modules: z.array(z.string()), entities: z.array(z.string()) }),
});
export type Instance = z.infer<typeof instanceSchema>;

export class BenchError extends Error {
  override name = "BenchError";
}

export function loadBench(path: string): Instance[] {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new BenchError(`cannot read ${path}: ${(err as Error).message}`);
  }
  const out: Instance[] = [];
  const seen = new Set<string>();
  text.split("\n").forEach((line, i) => {
    if (!line.trim()) return;
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch {
      throw new BenchError(`${path}:${i + 1}: not valid JSON`);
    }
    const parsed = instanceSchema.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new BenchError(`${path}:${i + 1}: ${issue.path.join(".") || "line"}: ${issue.message}`);
    }
    if (seen.has(parsed.data.instance_id)) throw new BenchError(`${path}:${i + 1}: duplicate instance_id ${parsed.data.instance_id}`);
    seen.add(parsed.data.instance_id);
    out.push(parsed.data);
  });
  return out;
}

/** `{repo}`, `{owner}` and `{name}` in a URL template, e.g. https://github.com/{repo}.git. */
export function repoUrl(template: string, repo: string): string {
  const [owner = "", name = ""] = repo.split("/");
  return template.replaceAll("{repo}", repo).replaceAll("{owner}", owner).replaceAll("{name}", name);
}

/**
 * The first instance whose URL from the template names another repository than its own (the
 * URL's last segment is the name the service knows the tree by: `{owner}+{name}.git` gives
 * `psf+requests`), or null. URLs the service would refuse are left to the run to report.
 */
export function misnamedBy(template: string, instances: Pick<Instance, "repo">[]): { url: string; repo: string; want: string; got: string } | null {
  for (const { repo } of instances) {
    const url = repoUrl(template, repo);
    const want = repo.split("/").at(-1)!;
    let got: string;
    try {
      got = parseRepoUrl(url, { allowFileUrls: true, allowHttpUrls: true }).name;
    } catch {
      continue;
    }
    if (got.toLowerCase() !== want.toLowerCase()) return { url, repo, want, got };
  }
  return null;
}
