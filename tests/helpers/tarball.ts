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

/**
 * Tar blocks written byte by byte, for archives no packer would write: headers that GNU tar
 * and tar-stream read differently. `raw.entry` is a ustar header and its padded data.
 */
export const raw = {
  header(name: string, type: string, size: number, options: { linkname?: string; mode?: number; sizeField?: string } = {}): Buffer {
    const b = Buffer.alloc(512);
    b.write(name, 0, "latin1");
    b.write(`${(options.mode ?? 0o644).toString(8).padStart(7, "0")}\0`, 100, "latin1");
    b.write("0000000\0", 108, "latin1");
    b.write("0000000\0", 116, "latin1");
    b.write(options.sizeField ?? `${size.toString(8).padStart(11, "0")}\0`, 124, "latin1");
    b.write("00000000000\0", 136, "latin1");
    b.write(type, 156, "latin1");
    if (options.linkname) b.write(options.linkname, 157, "latin1");
    b.write("ustar\x0000", 257, "latin1");
    b.fill(" ", 148, 156);
    let sum = 0;
    for (const byte of b) sum += byte;
    b.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, "latin1");
    return b;
  },
  entry(name: string, data: string | Buffer = "", type = "0", options: { linkname?: string; mode?: number } = {}): Buffer {
    const body = Buffer.isBuffer(data) ? data : Buffer.from(data, "latin1");
    return Buffer.concat([raw.header(name, type, body.length, options), body, Buffer.alloc((512 - (body.length % 512)) % 512)]);
  },
  /** A pax header (`x`, or `g` for a global one) holding these records. */
  pax(records: Array<[string, string]>, type = "x"): Buffer {
    let body = "";
    for (const [k, v] of records) {
      const rec = ` ${k}=${v}\n`;
      let n = rec.length + 1;
      while (String(n).length + rec.length !== n) n++;
      body += `${n}${rec}`;
    }
    return raw.entry("PaxHeader", body, type);
  },
  end: Buffer.alloc(1024),
};
