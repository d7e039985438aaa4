import { rmSync } from "node:fs";
import { defaultTreeDir } from "../../src/repos/trees.js";

/**
 * Removes a repository cache dir a test made, and the trees RepoCache put on the host's tmpfs
 * for it (their place is derived from the cache dir): left there, they stay in memory after
 * the run, ~800 MB per run of the suite.
 */
export function removeCacheDir(dir: string): void {
  rmSync(defaultTreeDir(dir), { recursive: true, force: true });
  rmSync(dir, { recursive: true, force: true });
}
