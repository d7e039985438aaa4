/** Every Redis key of the service is built here, under the queue prefix, so tests can drop a prefix whole. */
export function keys(prefix: string) {
  const base = `${prefix}:localize`;
  return {
    /** Plain JSON, as services before 0.9.2 wrote (and read) it; read until it expires. */
    trajectory: (id: string) => `${base}:trajectory:${id}`,
    /** Gzipped JSON, under its own name: an earlier API reading it finds no trajectory (404), not bytes it cannot parse (500). */
    trajectoryGz: (id: string) => `${base}:trajectory-gz:${id}`,
    events: (id: string) => `${base}:events:${id}`,
    staticView: (id: string) => `${base}:static:${id}`,
    cancelFlag: (id: string) => `${base}:cancel:${id}`,
    /** When a worker's engine first failed to start the job's sandbox (ms since the epoch). */
    engineTrouble: (id: string) => `${base}:engine-trouble:${id}`,
    sandboxStops: (id: string) => `${base}:sandbox-stops:${id}`,
    cancelChannel: `${base}:cancel`,
    idempotency: (hash: string) => `${base}:idem:${hash}`,
    resultCache: (hash: string) => `${base}:cache:${hash}`,
    /** A sorted set (id → when it was reserved); `:open` held a plain set before. */
    ownerOpenJobs: (owner: string) => `${base}:owner:${owner}:opened`,
    /** The owner's jobs recorded as waiting, by when (store/turns.ts). */
    ownerWaiting: (owner: string) => `${base}:owner:${owner}:waiting`,
    /** The round (priority) of the owner's last waiting job (store/turns.ts). */
    ownerTurn: (owner: string) => `${base}:owner:${owner}:turn`,
    /** BullMQ's own keys, read (never written) to learn which jobs wait: its prioritized set, and its job records' prefix. */
    prioritized: `${base}:prioritized`,
    jobPrefix: `${base}:`,
    /** The API keys granted an upload (store/uploadGrants.ts). */
    uploadOwners: (id: string) => `${base}:upload-owners:${id}`,
    /** The uploads an API key holds, by when its hold ends, and their archives' bytes (store/uploadGrants.ts). */
    ownerUploads: (owner: string) => `${base}:owner:${owner}:uploads`,
    ownerUploadBytes: (owner: string) => `${base}:owner:${owner}:upload-bytes`,
    rate: (owner: string, window: number) => `${base}:rate:${owner}:${window}`,
    workerHeartbeat: (id: string) => `${base}:worker:${id}`,
    workerHeartbeatPattern: `${base}:worker:*`,
    /** Set by every heartbeat, so "is any worker alive" is one EXISTS instead of a SCAN of the keyspace. */
    workersAlive: `${base}:workers-alive`,
    /** A random id set once per Redis and queue: the deployment's own, however its URL is spelled. */
    deployment: `${base}:deployment`,
  };
}
export type Keys = ReturnType<typeof keys>;
