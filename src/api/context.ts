import type { FastifyReply, FastifyRequest } from "fastify";
import type { Redis } from "ioredis";
import type { Config } from "../config/env.js";
import type { LocalizeQueue } from "../queue/producer.js";
import type { JobEvents } from "../store/events.js";
import type { EventHub } from "../store/eventHub.js";
import type { JobStore } from "../store/jobStore.js";
import type { ResultCache } from "../store/resultCache.js";
import type { UploadGrants } from "../store/uploadGrants.js";
import type { Limits } from "./limits.js";
import type { Submitter } from "./submit.js";
import type { ServiceMetrics } from "./metrics.js";
import type { UploadStore } from "../uploads/store.js";
import type { Resolver } from "../queue/hostPolicy.js";
import type { NoWorkerWatch } from "./follow.js";
import type { FollowerSlots } from "./followers.js";
import type { WorkerPresence } from "../store/workers.js";
import type { ApiShutdown } from "./shutdown.js";

/** What the HTTP layer is given (build.ts wires it): it enqueues and reads jobs, never runs them. */
export interface AppDeps {
  config: Config;
  queue: LocalizeQueue;
  store: JobStore;
  redis: Redis;
  metrics: ServiceMetrics;
  uploads: UploadStore;
  /** How host names are resolved for the URL policy (the system's resolver unless injected). */
  resolver: Resolver;
}

/** The app's own pieces, made once from AppDeps and shared by the route plugins. */
export interface AppContext extends AppDeps {
  events: JobEvents;
  /** What followers read a job's events through: one blocking connection for all of them. */
  eventHub: EventHub;
  cache: ResultCache;
  /** Which keys may use which uploads. */
  uploadGrants: UploadGrants;
  submitter: Submitter;
  limits: Limits;
  /** Places for the jobs followed at once (each holds a stream's reads and a response). */
  followers: FollowerSlots;
  /** Which workers are alive, read from Redis at most once a second. */
  workers: WorkerPresence;
  /** Followers holding a call for an agent are told when their job waits with no worker alive. */
  noWorker: NoWorkerWatch;
  /** Fires as the API stops: streams end at `closing`, held calls answer at `handOff`. */
  shutdown: Pick<ApiShutdown, "closing" | "handOff">;
  authenticate: (request: FastifyRequest, reply: FastifyReply) => Promise<void>;
}
