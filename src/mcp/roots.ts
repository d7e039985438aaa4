import { realpathSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

/**
 * Whether `path` is one of `dirs` or inside one, by the directories' identity on disk (device and
 * inode), not their spelling: macOS's file systems take either case and either Unicode form for
 * one directory (a root Finder named with a decomposed "é", a path a model typed composed), and
 * Windows' either case, while a case-sensitive volume holds `Proj` and `proj` as two. A path not on
 * disk yet is judged by its nearest ancestor that is.
 */
export function withinAny(path: string, dirs: string[]): boolean {
  const roots = new Set(dirs.map(identity).filter((id): id is string => id !== null));
  for (let at = onDisk(resolve(path)); ; at = dirname(at)) {
    const id = identity(at);
    if (id !== null && roots.has(id)) return true;
    if (dirname(at) === at) return false;
  }
}

function identity(path: string): string | null {
  try {
    const st = statSync(path, { bigint: true });
    return `${st.dev}:${st.ino}`;
  } catch {
    return null;
  }
}

/** The path with its links resolved, as far as it exists (what follows is kept as written). */
function onDisk(path: string): string {
  for (let at = path; ; at = dirname(at)) {
    try {
      return join(realpathSync(at), relative(at, path));
    } catch {
      if (dirname(at) === at) return path;
    }
  }
}
