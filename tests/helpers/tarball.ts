import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { pack, type Header as Headers } from "tar-stream";

/** Real tar archives, crafted entry by entry (hostile ones included) with tar-stream's packer. */
export type TarEntry = Partial<Headers> & { name: string; body?: string | Buffer };

export async function tarOf(entries: TarEntry[], options: { gzip?: boolean } = {}): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  p.on("data", (c) => chunks.push(c as Buffer));
  const done = new Promise<void>((r) => p.on("end", () => r()));
  for (const { body, ...header } of entries) {
    await new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null) => (err ? reject(err) : resolve());
      if (header.type && header.type !== "file") p.entry(header, cb);
      else p.entry(header, body ?? "", cb);
    });
  }
  p.finalize();
  await done;
  const tar = Buffer.concat(chunks);
  return options.gzip ? gzipSync(tar) : tar;
}

/** A GNU tar archive of a sparse file of `bytes` (holes only): tiny on the wire, huge unpacked. */
export function sparseBomb(bytes: number): Buffer {
  const dir = mkdtempSync(join(tmpdir(), "codescout-bomb-"));
  try {
    execFileSync("truncate", ["-s", String(bytes), join(dir, "big.bin")]);
    execFileSync("tar", ["--sparse", "-czf", join(dir, "bomb.tgz"), "-C", dir, "big.bin"]);
    return readFileSync(join(dir, "bomb.tgz"));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
