import { createHash } from "node:crypto";
import type { Redis } from "ioredis";

/**
 * Which job an MCP tool call follows, by the key, session and JSON-RPC request that made it,
 * kept in Redis while the call is held: a client's `notifications/cancelled` that reaches
 * another API process than its call (a replica behind a load balancer that does not route by
 * session, or the process after a restart) still cancels the job. The names are hashed: a
 * session id is the client's secret, and nothing in Redis needs it in the clear.
 */
export class McpCallJobs {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    /** A call held longer than this is forgotten anyway (its job has ended by then). */
    private readonly ttlS: number,
  ) {}

  private key(owner: string, session: string, request: string | number): string {
    const name = createHash("sha256").update(`${owner}\0${session}\0${typeof request}:${String(request)}`).digest("hex");
    return `${this.prefix}:mcp-call:${name}`;
  }

  async remember(owner: string, session: string, request: string | number, jobId: string): Promise<void> {
    await this.redis.set(this.key(owner, session, request), jobId, "EX", this.ttlS);
  }

  async forget(owner: string, session: string, request: string | number): Promise<void> {
    await this.redis.del(this.key(owner, session, request));
  }

  jobOf(owner: string, session: string, request: string | number): Promise<string | null> {
    return this.redis.get(this.key(owner, session, request));
  }
}
