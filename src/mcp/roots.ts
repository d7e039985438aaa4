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
  // A root with no identity (not on disk, or on a volume that gives none) is compared as spelled.
  const spelled = new Set(dirs.filter((d) => identity(d) === null).map((d) => comparable(onDisk(resolve(d)))));
  for (let at = onDisk(resolve(path)); ; at = dirname(at)) {
    const id = identity(at);
    if ((id !== null && roots.has(id)) || spelled.has(comparable(at))) return true;
    if (dirname(at) === at) return false;
  }
}

/**
 * A directory's device and file id; null where it has none. Windows gives 0 on volumes without
 * file ids and all ones where none can be made (MS-FSCC 2.1.9): every directory there would be
 * one.
 */
function identity(path: string): string | null {
  try {
    const st = statSync(path, { bigint: true });
    if (st.ino === 0n || st.ino === 0xffffffffffffffffn) return null;
    return `${st.dev}:${st.ino}`;
  } catch {
    return null;
  }
}

const comparable = (p: string) => (process.platform === "win32" ? p.toLowerCase() : p);

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
