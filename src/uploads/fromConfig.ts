import type { Redis } from "ioredis";
import type { Config } from "../config/env.js";
import type { ArchiveLimits } from "./archive.js";
import { DirUploadStore, RedisUploadStore, type UploadStore } from "./store.js";

/** The upload store and archive caps the environment asks for; the API and workers read the same. */
export function uploadStoreFromConfig(config: Config, redis: Redis): UploadStore {
  return config.UPLOAD_STORE === "redis"
    ? new RedisUploadStore(redis, config.QUEUE_PREFIX, config.UPLOAD_TTL_S, config.UPLOAD_MAX_ARCHIVE_BYTES, config.UPLOAD_REDIS_MAX_MB * 2 ** 20)
    : new DirUploadStore(config.UPLOAD_DIR, config.UPLOAD_TTL_S, { minFree: config.UPLOAD_MIN_FREE_MB * 2 ** 20, reserve: config.UPLOAD_MAX_ARCHIVE_BYTES });
}

export function archiveLimitsFromConfig(config: Config): ArchiveLimits {
  return {
    maxBytes: config.UPLOAD_MAX_BYTES,
    maxFiles: config.UPLOAD_MAX_FILES,
    maxPathBytes: config.UPLOAD_MAX_PATH_BYTES,
    maxRatio: config.UPLOAD_MAX_RATIO,
  };
}
