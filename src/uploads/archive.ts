import { createHash } from "node:crypto";
import { Readable, Transform, type TransformCallback } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import { posix } from "node:path";
import { extract as tarExtract, type ExtractEvents, type Header as Headers } from "tar-stream";
import { treeDigest, type TreeEntry } from "./digest.js";

type EntryStream = ExtractEvents["entry"][1];

/**
 * Reads a working tree sent as a tar or tar.gz, treating every byte as hostile. Only regular
 * files, directories and symlinks that stay inside the tree are accepted; absolute paths,
 * `..`, paths through a symlink, hard links, devices, fifos, sparse files and special mode
 * bits are refused, and so is going past any cap. Nothing is written: the API checks an
 * upload this way as it arrives, and a worker checks it again before extracting it
 * (extract.ts).
 */

export interface ArchiveLimits {
  /** Sum of file sizes after decompression. */
  maxBytes: number;
  maxFiles: number;
  /** Bytes of one path (UTF-8). */
  maxPathBytes: number;
  /** Decompressed bytes per compressed byte, beyond a small allowance. */
  maxRatio: number;
}

export class ArchiveError extends Error {
  override name = "ArchiveError";
  constructor(
    readonly code: "invalid_archive" | "unsafe_path" | "unsupported_entry" | "too_large" | "too_many_files" | "path_too_long" | "compression_ratio",
    message: string,
  ) {
    super(message);
  }
}

export interface ArchiveSummary {
  /** The tree's digest (digest.ts): the same tree gives the same value, however it was packed. "" when contents were not hashed. */
  sha256: string;
  files: number;
  /** Sum of file sizes. */
  bytes: number;
  /** Bytes read from the source (compressed when it was gzip). */
  archiveBytes: number;
}

/** Decompressed bytes allowed before the ratio applies, so small archives of small files pass. */
const RATIO_ALLOWANCE = 8 << 20;

export async function readArchive(
  source: AsyncIterable<Buffer> & { destroy?: () => void },
  limits: ArchiveLimits,
  options: { hashContents: boolean } = { hashContents: true },
): Promise<ArchiveSummary> {
  let archiveBytes = 0;
  const chunks = (async function* () {
    try {
      for await (const chunk of source) {
        archiveBytes += chunk.length;
        yield chunk;
      }
    } catch (err) {
      // The source's own failure (a cap, a dropped connection) is the caller's to judge.
      throw new SourceError(err);
    }
  })();
  // Gzip or not is told by the magic bytes, not by what the client says it sent.
  let head = Buffer.alloc(0);
  while (head.length < 2) {
    const next = await chunks.next().catch(unwrapSource);
    if (next.done) break;
    head = Buffer.concat([head, next.value]);
  }
  if (head.length === 0) throw new ArchiveError("invalid_archive", "the archive is empty");
  const gzip = head[0] === 0x1f && head[1] === 0x8b;
  const replay = async function* () {
    yield head;
    yield* chunks;
  };

  let unpacked = 0;
  const ratio = new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      unpacked += chunk.length;
      if (gzip && unpacked > RATIO_ALLOWANCE && unpacked > limits.maxRatio * archiveBytes) {
        cb(new ArchiveError("compression_ratio", `the archive expands more than ${limits.maxRatio}× its compressed size`));
        return;
      }
      // Tar headers and padding come on top of the file bytes.
      if (unpacked > limits.maxBytes + limits.maxFiles * 1536 + (1 << 20)) {
        cb(new ArchiveError("too_large", `the archive holds more than ${limits.maxBytes} bytes`));
        return;
      }
      cb(null, chunk);
    },
  });

  const reader = tarExtract();
  const entries: TreeEntry[] = [];
  const seen = new Set<string>();
  // Each symlink and its target: checked alone as they come, and followed through one another at the end.
  const symlinks = new Map<string, string>();
  let bytes = 0;
  let files = 0;

  // Entry callbacks rather than async iteration: a tree has thousands of small files, and an
  // iterator per entry cost more than the checks and the hashing together.
  const onEntry = (header: Headers, entry: EntryStream, next: () => void): void => {
    const path = checkPath(header, limits);
    if (path === null) {
      // The archive's own root ("./"): nothing to make.
      return skip(entry, next);
    }
    for (let dir = posix.dirname(path); dir !== "."; dir = posix.dirname(dir)) {
      if (symlinks.has(dir)) throw new ArchiveError("unsafe_path", `${path}: its parent ${dir} is a symlink`);
      // A path under a file (in either order) is no tree: tar refuses it at the worker, and every job on the upload failed late.
      if (seen.has(dir)) throw new ArchiveError("unsafe_path", `${path}: its parent ${dir} is a file`);
      seen.add(`${dir}/`);
    }
    // Only a file has contents: tar-stream never ends another entry that claims some, and the upload would hang.
    if (header.type !== "file" && (header.size ?? 0) > 0) throw new ArchiveError("unsupported_entry", `${path}: a ${describe(header)} entry with contents`);
    if (header.type === "directory") {
      if (symlinks.has(path)) throw new ArchiveError("unsafe_path", `${path}: a directory where a symlink was`);
      if (seen.has(path)) throw new ArchiveError("unsafe_path", `${path}: a directory where a file was`);
      if ((header.mode ?? 0o755) & ~0o777) throw new ArchiveError("unsupported_entry", `${path}: setuid, setgid and sticky bits are not accepted`);
      seen.add(`${path}/`);
      return skip(entry, next);
    }
    if (seen.has(`${path}/`)) throw new ArchiveError("unsafe_path", `${path}: a file where a directory was`);
    if (seen.has(path)) throw new ArchiveError("unsafe_path", `${path}: appears twice in the archive`);
    seen.add(path);
    if (header.type === "symlink") {
      const target = checkLink(path, header.linkname ?? "");
      symlinks.set(path, target);
      if (options.hashContents) entries.push({ kind: "link", path, target });
      return skip(entry, next);
    }
    if (header.type !== "file") throw new ArchiveError("unsupported_entry", `${path}: ${describe(header)} entries are not accepted`);
    if (header.pax && Object.keys(header.pax).some((k) => k.startsWith("GNU.sparse"))) {
      throw new ArchiveError("unsupported_entry", `${path}: sparse files are not accepted`);
    }
    if (++files > limits.maxFiles) throw new ArchiveError("too_many_files", `the archive holds more than ${limits.maxFiles} files`);
    const size = header.size ?? 0;
    if (bytes + size > limits.maxBytes) throw new ArchiveError("too_large", `the archive holds more than ${limits.maxBytes} bytes`);
    bytes += size;
    const mode = header.mode ?? 0o644;
    if (mode & ~0o777) throw new ArchiveError("unsupported_entry", `${path}: setuid, setgid and sticky bits are not accepted`);
    // The entries are only for the digest.
    if (!options.hashContents) return skip(entry, next);
    const hash = createHash("sha256");
    entry.on("data", (chunk) => hash.update(chunk as Buffer));
    entry.once("end", () => {
      entries.push({ kind: "file", path, executable: (mode & 0o111) !== 0, sha256: hash.digest("hex") });
      next();
    });
  };
  const consume = new Promise<void>((resolve, reject) => {
    reader.on("entry", (header, entry, next) => {
      // Destroying the reader fails the entry in flight too; that failure is already the reader's.
      entry.on("error", () => undefined);
      try {
        onEntry(header, entry, next);
      } catch (err) {
        reject(err);
        reader.destroy(err as Error);
      }
    });
    reader.once("finish", resolve);
    reader.once("error", reject);
  });

  const feed = gzip ? pipeline(Readable.from(replay()), createGunzip(), ratio, reader) : pipeline(Readable.from(replay()), ratio, reader);
  try {
    await Promise.all([feed, consume]);
  } catch (err) {
    source.destroy?.();
    reader.destroy();
    if (err instanceof ArchiveError) throw err;
    if (err instanceof SourceError) throw err.original;
    throw new ArchiveError("invalid_archive", `not a readable tar or tar.gz: ${(err as Error).message ?? String(err)}`);
  }
  followLinks(symlinks);
  return { sha256: options.hashContents ? treeDigest(entries) : "", files, bytes, archiveBytes };
}

/** The entry's path, normalized; null for the archive root. Throws for anything unsafe. */
function checkPath(header: Headers, limits: ArchiveLimits): string | null {
  const raw = header.name ?? "";
  if (Buffer.byteLength(raw) > limits.maxPathBytes) throw new ArchiveError("path_too_long", `a path is longer than ${limits.maxPathBytes} bytes`);
  if (raw.includes("\0") || raw.includes("\\")) throw new ArchiveError("unsafe_path", `${JSON.stringify(raw)}: backslashes and NUL are not accepted in paths`);
  if (raw.startsWith("/")) throw new ArchiveError("unsafe_path", `${raw}: absolute paths are not accepted`);
  // A newline in a path could forge the next line of the tree's digest (digest.ts): two trees, one id.
  if (/[\n\r]/.test(raw)) throw new ArchiveError("unsafe_path", `${JSON.stringify(raw)}: line breaks are not accepted in paths`);
  const parts = pathParts(raw);
  if (parts.includes("..")) throw new ArchiveError("unsafe_path", `${raw}: paths with .. are not accepted`);
  if (parts.length === 0) return null;
  if (parts.some((p: string) => Buffer.byteLength(p) > 255)) throw new ArchiveError("path_too_long", `${raw}: a path component is longer than 255 bytes`);
  // Git's own directory would let a tree smuggle hooks and config into a later git run.
  if (parts[0] === ".git") throw new ArchiveError("unsafe_path", `${raw}: .git is not accepted in an upload`);
  return parts.join("/");
}

const pathParts = (raw: string) => raw.split("/").filter((p: string) => p !== "" && p !== ".");

/** An entry's path as the checks read it (null: the archive's root), for an entry they accepted. */
export function entryPath(header: Headers): string | null {
  const parts = pathParts(header.name ?? "");
  return parts.length ? parts.join("/") : null;
}

/** A symlink must be relative; where it leads, through the others, is followLinks' to judge. */
function checkLink(path: string, target: string): string {
  if (!target || target.includes("\0")) throw new ArchiveError("unsafe_path", `${path}: a symlink without a target`);
  if (target.startsWith("/")) throw new ArchiveError("unsafe_path", `${path}: a symlink to an absolute path (${target}) leaves the tree`);
  if (Buffer.byteLength(target) > 4096) throw new ArchiveError("path_too_long", `${path}: the symlink target is too long`);
  return target;
}

/**
 * Each symlink followed through the others, as the kernel resolves a path, and refused if it
 * leaves the tree: judged on its text alone, `d -> .` then `s -> d/..` stayed in the tree, yet
 * `s` is the tree's parent, where other trees are (and `lib/../..`, with `lib -> src/lib`, was
 * refused though it is the top). Chains past 40 links (the kernel's own limit) or looping are
 * refused too. The links are a tree of their path's parts, so each step is one lookup, and the
 * steps of a whole archive are bounded: a 6.5 KB archive of links with long targets took 6.5 s
 * of the API's event loop when each step copied the path.
 */
interface LinkNode {
  children: Map<string, LinkNode>;
  target?: string[];
}
const MAX_LINK_STEPS = 1_000_000;

function followLinks(links: Map<string, string>): void {
  if (links.size === 0) return;
  const root: LinkNode = { children: new Map() };
  for (const [path, target] of links) {
    let node = root;
    for (const part of path.split("/")) {
      let next = node.children.get(part);
      if (!next) node.children.set(part, (next = { children: new Map() }));
      node = next;
    }
    node.target = target.split("/");
  }
  let steps = 0;
  for (const [path, target] of links) {
    // The trie's node for each directory walked (undefined past what any link's path holds).
    const at: Array<LinkNode | undefined> = [root];
    for (const part of posix.dirname(path).split("/")) if (part !== ".") at.push(at[at.length - 1]?.children.get(part));
    const pending: Array<{ parts: string[]; next: number }> = [{ parts: target.split("/"), next: 0 }];
    let hops = 0;
    while (pending.length) {
      const top = pending[pending.length - 1]!;
      if (top.next === top.parts.length) {
        pending.pop();
        continue;
      }
      const part = top.parts[top.next++]!;
      if (++steps > MAX_LINK_STEPS) throw new ArchiveError("unsafe_path", "the archive's symlinks take too many steps to follow");
      if (part === "" || part === ".") continue;
      if (part === "..") {
        if (at.length === 1) throw new ArchiveError("unsafe_path", `${path}: a symlink to ${target} leaves the tree${hops ? " through another symlink" : ""}`);
        at.pop();
        continue;
      }
      const node = at[at.length - 1]?.children.get(part);
      if (node?.target) {
        // A link's target is read from the directory that holds the link: `at`, as it stands.
        if (++hops > 40) throw new ArchiveError("unsafe_path", `${path}: a chain of symlinks longer than 40, or a loop`);
        pending.push({ parts: node.target, next: 0 });
        continue;
      }
      at.push(node);
    }
  }
}

function skip(entry: EntryStream, next: () => void): void {
  entry.once("end", () => next());
  entry.resume();
}

function describe(header: Headers): string {
  switch (header.type) {
    case "link":
      return "hard link";
    case "character-device":
    case "block-device":
      return "device";
    case "fifo":
      return "fifo";
    case null:
    case undefined:
      return "unknown (e.g. sparse)";
    default:
      return String(header.type);
  }
}

class SourceError extends Error {
  constructor(readonly original: unknown) {
    super("the archive source failed");
  }
}

function unwrapSource(err: unknown): never {
  if (err instanceof SourceError) throw err.original;
  throw err;
}
