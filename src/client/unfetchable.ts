import { randomBytes } from "node:crypto";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { clientCacheDir } from "./snapshot.js";

/**
 * Remotes a service could not fetch (a private repository it has no token for, a host it cannot
 * reach) or would not (a host on a private network, plain http), remembered for a while per
 * service: the next calls go straight to the upload instead of queueing a job that can only fail
 * first. A while, not for good: a token or a network route may be added, and a failure may have
 * been passing.
 */
export class UnfetchableRemotes {
  private readonly file: string;

  constructor(
    dir = clientCacheDir(),
    private readonly forMs = 60 * 60_000,
  ) {
    this.file = join(dir, "unfetchable.json");
  }

  private async read(): Promise<Record<string, number>> {
    try {
      const parsed = JSON.parse(await readFile(this.file, "utf8")) as unknown;
      return parsed && typeof parsed === "object" ? (parsed as Record<string, number>) : {};
    } catch {
      return {};
    }
  }

  /** When the service last could not use the remote, if within the while; else null. */
  async since(service: string, remote: string): Promise<Date | null> {
    const at = (await this.read())[`${service} ${remote}`];
    return typeof at === "number" && Date.now() - at < this.forMs ? new Date(at) : null;
  }

  async add(service: string, remote: string): Promise<void> {
    const now = Date.now();
    const kept = Object.entries(await this.read()).filter(([, at]) => typeof at === "number" && now - at < this.forMs);
    await mkdir(join(this.file, ".."), { recursive: true });
    const tmp = `${this.file}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
    await writeFile(tmp, JSON.stringify(Object.fromEntries([...kept, [`${service} ${remote}`, now]])));
    await rename(tmp, this.file);
  }
}
