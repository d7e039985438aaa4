import { realpathSync } from "node:fs";
import { isAbsolute, relative, resolve, sep } from "node:path";

/**
 * Whether `path` is one of `dirs` or inside one, as the file system would say. macOS's (APFS,
 * HFS+) takes a name in either case and either Unicode form for the same file, and Windows'
 * either case: there a root given by the client (Finder's decomposed "é") and a path a model
 * typed (composed, or in another case) name one directory, and were compared as bytes.
 */
export function withinAny(path: string, dirs: string[], platform: NodeJS.Platform = process.platform): boolean {
  const spelled = (p: string) => {
    let real: string;
    try {
      real = realpathSync(resolve(p));
    } catch {
      real = resolve(p);
    }
    if (platform === "darwin") return real.normalize("NFC").toLowerCase();
    return platform === "win32" ? real.toLowerCase() : real;
  };
  const target = spelled(path);
  return dirs.some((dir) => {
    const rel = relative(spelled(dir), target);
    return rel !== ".." && !rel.startsWith(`..${sep}`) && !isAbsolute(rel);
  });
}
