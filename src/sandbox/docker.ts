import { randomBytes } from "node:crypto";
import { spawn } from "node:child_process";
import { readlinkSync } from "node:fs";
import { availableParallelism, hostname } from "node:os";
import { posix } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Duplex } from "node:stream";
import Dockerode from "dockerode";
import pLimit, { type LimitFunction } from "p-limit";
import {
  SandboxError,
  type ExecOptions,
  type ExecResult,
  type Sandbox,
  type SandboxProvider,
  type SandboxSpec,
} from "./types.js";
import { TerminalClient } from "./terminal.js";
import { DEFAULT_EXEC_BYTES, EXEC_UNKNOWN, ExecChannel, MAX_CHANNEL_STDIN } from "./serverExec.js";
import { LineReader } from "./lineReader.js";
import { CappedBuffer, TailBuffer, demux } from "./demux.js";
import { MAX_LINE_BYTES, ProtocolError, parseServerLine } from "./protocol.js";

/**
 * Sandboxes as Docker containers: one throwaway, locked-down container per job with the
 * repository read-only at the job's working directory and the terminal server as its main
 * process, talked to over the attach stream.
 */

export interface DockerSandboxOptions {
  /** Defaults to the engine in DOCKER_HOST / the local socket. */
  docker?: Dockerode;
  image: string;
  memoryMb: number;
  pidsLimit: number;
  cpus: number;
  /** Size cap of the writable /tmp. */
  tmpfsMb: number;
  /** Wall-clock cap of one sandbox; it is destroyed when exceeded. */
  jobTimeoutS: number;
  /** `bind` mounts the host tree read-only; `copy` streams it in (remote engines). */
  mountMode: "bind" | "copy";
  /** The reference's "no new output" timeout; 30 s unless a test wants it shorter. */
  softTimeoutMs?: number;
  /** Value of the `codescout.service` label; reaping only ever touches this value. */
  serviceLabel?: string;
  /** Size cap of the tmpfs holding the copied tree in copy mode. */
  copyTmpfsMb?: number;
  /** How long the shell may take to answer after the container started. */
  readyTimeoutMs?: number;
  /** Sandboxes starting at once (default: one per core); the others wait their turn. */
  startConcurrency?: number;
  /**
   * Where this provider's owner beats (`scope`: its Redis and queue, hashed) and the sandbox
   * owners beating there now (`alive`; null: cannot tell). Given, the provider's containers name
   * that scope, and a container naming it whose owner beats no more is an orphan: a worker
   * container restarted in place, its pid namespace new, left its sandboxes to the age rule
   * alone (the job's time and two minutes). Another scope's containers (another deployment on
   * the same engine) are never judged by this one's heartbeats.
   */
  owners?: { scope: string; alive: () => Promise<Set<string> | null> };
}

export const SANDBOX_UID = 10001;
const LABEL_SERVICE = "codescout.service";
const LABEL_JOB = "codescout.job";
const LABEL_OWNER = "codescout.owner";
/** On the containers of a provider whose owner's heartbeat names it: where it beats (owners.scope). */
const LABEL_BEATS = "codescout.owner-beats";
/**
 * When the sandbox is past any use (epoch seconds: its job's time limit and a margin), by its own
 * maker's limit: two deployments sharing an engine may allow their jobs different times, and one
 * judging the other's sandboxes by its own removed them mid-job.
 */
const LABEL_EXPIRES = "codescout.expires";
/** A heartbeat beats every 10 s and lives 30 s: older than this, a container's owner has beaten since it was made. */
const BEATING_GRACE_S = 60;
const SERVER = ["python3", "-I", "-S", "-u", "/opt/codescout/terminal-server.py"];

const WORKDIR_RE = /^\/tmp\/testbed\/[0-9a-f]{8}\/[A-Za-z0-9._-]{1,200}$/;

export class DockerSandboxProvider implements SandboxProvider {
  readonly docker: Dockerode;
  /** Identifies this provider's containers: host, pid and a random part. */
  readonly ownerId: string;
  private readonly live = new Map<string, DockerSandbox>();
  private readonly opts: Required<Omit<DockerSandboxOptions, "docker" | "startConcurrency" | "owners">>;
  private readonly owners: DockerSandboxOptions["owners"];
  /**
   * Starting a container is the most CPU a job takes on the host (the engine's work, then
   * the shell's start). Dozens at once, as when a worker at GPU-scale concurrency picks up a
   * full queue, starve the tool calls of episodes already running: their per-turn time went
   * from ~40 ms to ~1 s at p99 (bench/inflight.ts). Queued starts cost a job only its wait.
   */
  private readonly starts: LimitFunction;

  constructor(options: DockerSandboxOptions) {
    this.docker = options.docker ?? new Dockerode();
    this.ownerId = `${hostname()}:${process.pid}:${randomBytes(4).toString("hex")}:${PID_NAMESPACE}`;
    this.opts = {
      image: options.image,
      memoryMb: options.memoryMb,
      pidsLimit: options.pidsLimit,
      cpus: options.cpus,
      tmpfsMb: options.tmpfsMb,
      jobTimeoutS: options.jobTimeoutS,
      mountMode: options.mountMode,
      softTimeoutMs: options.softTimeoutMs ?? 30_000,
      serviceLabel: options.serviceLabel ?? "codescout",
      copyTmpfsMb: options.copyTmpfsMb ?? 2048,
      readyTimeoutMs: options.readyTimeoutMs ?? 20_000,
    };
    this.starts = pLimit(options.startConcurrency ?? availableParallelism());
    this.owners = options.owners;
  }

  get serviceLabel(): string {
    return this.opts.serviceLabel;
  }

  /** The container definition; exported through the provider so tests can inspect it. */
  containerSpec(spec: SandboxSpec): Dockerode.ContainerCreateOptions {
    const o = this.opts;
    const memory = o.memoryMb * 1024 * 1024;
    const tmpfs: Record<string, string> = { "/tmp": `rw,nosuid,nodev,size=${o.tmpfsMb}m,mode=1777` };
    const mounts: Dockerode.MountSettings[] = [];
    if (o.mountMode === "bind") {
      mounts.push({
        Type: "bind",
        Source: spec.treePath,
        Target: spec.workingDir,
        ReadOnly: true,
        BindOptions: { Propagation: "rprivate" },
      });
    } else {
      // Root-owned 0755 tmpfs: the tree copied into it is readable, never writable, for uid 10001.
      tmpfs[posix.dirname(spec.workingDir)] = `rw,nosuid,nodev,size=${o.copyTmpfsMb}m,mode=755`;
    }
    return {
      name: `codescout-${sanitize(spec.jobId).slice(0, 40)}-${randomBytes(3).toString("hex")}`,
      Image: o.image,
      Cmd: SERVER,
      User: `${SANDBOX_UID}:${SANDBOX_UID}`,
      // The working directory may not exist yet (copy mode); the server starts bash there.
      WorkingDir: "/tmp",
      Env: [`CS_WORKDIR=${spec.workingDir}`, `CS_MAX_LIFETIME_S=${o.jobTimeoutS + 60}`, "HOME=/tmp/home"],
      Labels: {
        [LABEL_SERVICE]: o.serviceLabel,
        [LABEL_JOB]: spec.jobId.slice(0, 200),
        [LABEL_OWNER]: this.ownerId,
        [LABEL_EXPIRES]: String(Math.ceil(Date.now() / 1000) + o.jobTimeoutS + PAST_LIMIT_S),
        ...(this.owners ? { [LABEL_BEATS]: this.owners.scope } : {}),
      },
      AttachStdin: true,
      AttachStdout: true,
      AttachStderr: true,
      OpenStdin: true,
      // The worker going away closes stdin, and the server exits with it.
      StdinOnce: true,
      Tty: false,
      NetworkDisabled: true,
      StopTimeout: 1,
      HostConfig: {
        NetworkMode: "none",
        ReadonlyRootfs: true,
        Mounts: mounts,
        Tmpfs: tmpfs,
        CapDrop: ["ALL"],
        SecurityOpt: ["no-new-privileges"],
        PidsLimit: o.pidsLimit,
        Memory: memory,
        MemorySwap: memory,
        NanoCpus: Math.round(o.cpus * 1e9),
        // Set, not left to the engine's default, so yieldCpu(false) restores exactly this.
        CpuShares: NORMAL_CPU_SHARES,
        Init: true,
        IpcMode: "private",
        ShmSize: 16 * 1024 * 1024,
        Ulimits: [{ Name: "nofile", Soft: 4096, Hard: 4096 }],
        // Nothing the sandbox prints may pile up on the host's disk.
        LogConfig: { Type: "none", Config: {} },
        AutoRemove: false,
        Privileged: false,
      },
    };
  }

  async create(spec: SandboxSpec, signal?: AbortSignal): Promise<Sandbox> {
    if (!WORKDIR_RE.test(spec.workingDir)) {
      throw new SandboxError("create_failed", `working directory must look like /tmp/testbed/<8 hex>/<name>, got ${spec.workingDir}`);
    }
    signal?.throwIfAborted();
    return this.starts(() => this.start(spec, signal));
  }

  private async start(spec: SandboxSpec, signal?: AbortSignal): Promise<Sandbox> {
    // The job may have been cancelled while its start waited its turn.
    signal?.throwIfAborted();
    let container: Dockerode.Container;
    try {
      container = await this.docker.createContainer(this.containerSpec(spec));
    } catch (err) {
      throw classifyEngineError(err, this.opts.image);
    }
    const sandbox = new DockerSandbox(this, container, spec, this.opts.softTimeoutMs, this.opts.readyTimeoutMs);
    this.live.set(container.id, sandbox);
    try {
      await sandbox.boot(this.opts.mountMode, this.opts.jobTimeoutS, signal);
      return sandbox;
    } catch (err) {
      await sandbox.destroy();
      if (err instanceof SandboxError || signal?.aborted) throw err;
      // The engine gone between the container's creation and its start: the engine's trouble, not the sandbox's.
      const engine = classifyEngineError(err, this.opts.image);
      if (engine.reason === "engine_unreachable") throw engine;
      // Made, then gone before it started (removed by an operator, or an engine restarting): from
      // outside it, as one stopped while it runs is, and handed back as that is.
      if ((err as { statusCode?: number }).statusCode === 404) {
        throw new SandboxError("stopped_outside", `the sandbox was stopped from outside it as it started (removed: the Docker engine, or an operator): ${(err as Error).message}`, { cause: err });
      }
      throw new SandboxError("create_failed", `could not start the sandbox: ${(err as Error).message}`, { cause: err });
    }
  }

  /**
   * Whether the engine stopped this container, started at `sinceS`: its event log says it killed
   * it (an operator's `docker stop`), or, for a server ended by a signal, the engine goes away in
   * the seconds after (an engine stopping or restarting stops every container first, and its
   * event log answers nothing by then). A process inside can end its own server, but neither
   * write the engine's log nor stop the engine. Read bounded; unread, it is not known to be so.
   */
  async stoppedByEngine(containerId: string, sinceS: number, exitCode: number): Promise<boolean> {
    const reading = AbortSignal.timeout(EVENTS_READ_MS);
    const killEvent = async () => {
      // docker-modem's abort signal, which dockerode's types do not say: the read ends at its time.
      const stream = (await this.docker.getEvents({
        since: sinceS,
        // Now, to the millisecond: a whole second ahead, the engine holds the stream open until then.
        until: (Date.now() / 1000).toFixed(3) as unknown as number,
        filters: { type: ["container"], container: [containerId], event: ["kill"] },
        abortSignal: reading,
      } as Parameters<Dockerode["getEvents"]>[0])) as NodeJS.ReadableStream;
      for await (const chunk of stream) if (String(chunk).trim()) return true;
      return false;
    };
    const killed = await killEvent().catch(() => false);
    if (killed || (exitCode !== 137 && exitCode !== 143)) return killed;
    // Gone, not slow: a loaded engine may miss one ping's time.
    let missed = 0;
    for (const until = Date.now() + ENGINE_GONE_WATCH_MS; Date.now() < until; await sleep(ENGINE_GONE_EVERY_MS)) {
      const answered = await this.pinged(ENGINE_GONE_EVERY_MS * 2).then(() => true, () => false);
      missed = answered ? 0 : missed + 1;
      if (missed >= 2) return true;
    }
    return false;
  }

  /**
   * The engine's ping, given up with its connection after `ms`: a hung engine asked every few
   * seconds kept each one open. dockerode's ping takes docker-modem's abort signal, which its
   * types do not say.
   */
  private async pinged(ms: number): Promise<void> {
    const ping = this.docker.ping.bind(this.docker) as unknown as (opts: { abortSignal: AbortSignal }) => Promise<unknown>;
    await ping({ abortSignal: AbortSignal.timeout(ms) });
  }

  /** Resolves when the engine answers and the sandbox image is present. */
  async ping(): Promise<void> {
    try {
      await this.pinged(PING_TIMEOUT_MS);
      await this.docker.getImage(this.opts.image).inspect();
    } catch (err) {
      throw classifyEngineError(err, this.opts.image);
    }
  }

  /**
   * Throws when the engine would start sandboxes without their limits: one lacking the cgroup
   * memory, pids or CPU controller (rootless without delegation, a kernel without them) drops
   * them with a warning the API's answer carries and nobody reads, and a sandbox then took
   * 1.5 GiB and 400 processes past its limits. A sandbox holds untrusted code: none is started so.
   */
  async checkLimits(): Promise<string[]> {
    let info: EngineLimits;
    try {
      info = (await this.docker.info()) as EngineLimits;
    } catch (err) {
      throw classifyEngineError(err, this.opts.image);
    }
    const missing = missingLimits(info);
    if (missing.length) {
      throw new SandboxError("create_failed", `the Docker engine cannot limit a sandbox's ${missing.join(", ")} (no cgroup controller for it: a rootless engine without delegation, or a kernel without it); a sandbox holds untrusted code and none is started without its limits`);
    }
    // Without swap accounting (many hosts' default) the memory limit holds, and a sandbox may swap past it: said, not refused.
    return info.SwapLimit === false ? ["the Docker engine cannot limit a sandbox's swap (no swap accounting: the kernel's swapaccount=1, or cgroup v2): a sandbox may use swap past its memory limit"] : [];
  }

  /** @internal */
  forget(id: string): void {
    this.live.delete(id);
  }

  /**
   * Removes this service's containers that no live sandbox owns: ours that were lost, those
   * of a process on this host that is gone, and any older than a job may live.
   */
  async reapOrphans(): Promise<number> {
    let list: Dockerode.ContainerInfo[];
    try {
      list = await this.docker.listContainers({ all: true, filters: { label: [`${LABEL_SERVICE}=${this.opts.serviceLabel}`] } });
    } catch (err) {
      throw classifyEngineError(err, this.opts.image);
    }
    const host = hostname();
    const maxAgeS = this.opts.jobTimeoutS + PAST_LIMIT_S;
    const now = Date.now() / 1000;
    // Asked once, and only when a container needs it; an answer Redis cannot give reaps nothing by it.
    const scope = this.owners?.scope;
    let beating = scope && list.some((info) => info.Labels?.[LABEL_BEATS] === scope) ? await this.owners!.alive().catch(() => null) : null;
    // Its own heartbeat missing, the answer says nothing of the others (a Redis full or far away
    // refuses the writes): were it believed, every live worker's sandboxes would look orphaned.
    if (beating && !beating.has(this.ownerId)) beating = null;
    let removed = 0;
    for (const info of list) {
      if (this.live.has(info.Id)) continue;
      const owner = info.Labels?.[LABEL_OWNER] ?? "";
      const [ownerHost, ownerPid, , ownerNs] = owner.split(":");
      // A pid means something only in the pid namespace it was read in: a worker in a container
      // sharing the host's name (host networking) sees none of the host's, and every worker
      // container's pid is the same few. An owner from an older worker names no namespace.
      const pidReadable = ownerHost === host && (ownerNs === undefined || ownerNs === PID_NAMESPACE);
      const orphan =
        // One of ours no live sandbox holds, unless just made: a sandbox being created is in
        // the engine before it is ours to know (the worker's upkeep reaps while jobs start).
        (owner === this.ownerId && now - info.Created > CREATING_GRACE_S) ||
        (pidReadable && !pidAlive(Number(ownerPid))) ||
        // Its owner's heartbeat named it, and no live worker's does now.
        (beating !== null && info.Labels?.[LABEL_BEATS] === scope && owner !== this.ownerId && !beating.has(owner) && now - info.Created > BEATING_GRACE_S) ||
        pastItsLimit(info, now, maxAgeS) ||
        !owner;
      if (!orphan) continue;
      if (await removeContainer(this.docker.getContainer(info.Id))) removed++;
    }
    return removed;
  }
}

/** What an engine's `info` says of the limits it can set. */
export interface EngineLimits {
  SwapLimit?: boolean;
  MemoryLimit?: boolean;
  PidsLimit?: boolean;
  CpuCfsQuota?: boolean;
}

/** The limits a sandbox is given that the engine says it cannot set. */
export function missingLimits(info: EngineLimits): string[] {
  return [info.MemoryLimit === false && "memory", info.PidsLimit === false && "number of processes", info.CpuCfsQuota === false && "CPU"].filter((x): x is string => Boolean(x));
}

/** How long the engine has to say how a sandbox whose stream closed ended (unanswered: the engine's trouble, not the job's). */
const INSPECT_STOPPED_MS = 5_000;
/** How long reading a container's kill events may take (the engine may be going away). */
const EVENTS_READ_MS = 3_000;
/** How long, and how often, an engine is watched for going away after a sandbox's server ended by a signal. */
const ENGINE_GONE_WATCH_MS = 3_000;
const ENGINE_GONE_EVERY_MS = 200;

/** How long an engine has to answer a ping. */
const PING_TIMEOUT_MS = 4_000;

/** How long past its job's time limit a sandbox may still be in use (its removal, a slow engine). */
const PAST_LIMIT_S = 120;

/** Whether a sandbox is past its maker's limit; one an earlier worker made, without it, by this worker's. */
function pastItsLimit(info: Dockerode.ContainerInfo, now: number, maxAgeS: number): boolean {
  const expires = Number(info.Labels?.[LABEL_EXPIRES]);
  return Number.isFinite(expires) && expires > 0 ? now > expires : now - info.Created > maxAgeS;
}

/**
 * CPU weights (cgroup v1 shares; the engine maps them onto cgroup v2's weights): every sandbox
 * at the engine's usual 1024, one that yields at the least the kernel takes, ~1/500 of another's share.
 */
const NORMAL_CPU_SHARES = 1024;
const YIELDING_CPU_SHARES = 2;

class DockerSandbox implements Sandbox {
  readonly id: string;
  readonly workingDir: string;
  readonly terminal: TerminalClient;
  private readonly execs: ExecChannel;
  private stream: Duplex | null = null;
  private readonly stderr = new TailBuffer(8192);
  private expiry: NodeJS.Timeout | null = null;
  private destroyed: Promise<void> | null = null;
  /** When it was started, in the engine's event times (seconds). */
  private startedAtS = 0;
  /** Its stream closed on its own, and the engine is being asked why. */
  private stopping = false;

  constructor(
    private readonly provider: DockerSandboxProvider,
    private readonly container: Dockerode.Container,
    private readonly spec: SandboxSpec,
    softTimeoutMs: number,
    readyTimeoutMs: number,
  ) {
    this.id = container.id;
    this.workingDir = spec.workingDir;
    const write = (line: string) => {
      if (!this.stream || this.stream.destroyed) {
        // Closed, and why is being asked of the engine (onStreamClosed): the request waits for
        // that answer's failure, which a failure of its own would have come before.
        if (this.stopping) return;
        throw new Error("stream closed");
      }
      this.stream.write(line);
    };
    this.terminal = new TerminalClient({ softTimeoutMs, readyTimeoutMs, write });
    this.execs = new ExecChannel(write);
  }

  async boot(mode: "bind" | "copy", jobTimeoutS: number, signal?: AbortSignal) {
    const stream = (await this.container.attach({
      stream: true,
      stdin: true,
      stdout: true,
      stderr: true,
      hijack: true,
    })) as Duplex;
    this.stream = stream;
    const reader = new LineReader(
      MAX_LINE_BYTES,
      (line) => {
        if (!line.trim()) return;
        try {
          const msg = parseServerLine(line);
          if (msg.type === "exec_data" || msg.type === "exec_done") this.execs.handle(msg);
          // A sandbox image older than the worker: its execs go through the engine, as they did.
          else if (msg.type === "fatal" && msg.message === EXEC_UNKNOWN) this.execs.notSupported();
          else this.terminal.handle(msg);
        } catch (err) {
          const msg = err instanceof ProtocolError ? err.message : String(err);
          this.kill(new SandboxError("terminal_died", msg));
        }
      },
      () => this.kill(new SandboxError("output_limit", `the sandbox sent a line longer than ${MAX_LINE_BYTES} bytes`)),
    );
    demux(stream, (b) => reader.push(b), (b) => this.stderr.push(b));
    stream.on("error", () => undefined);
    stream.on("close", () => void this.onStreamClosed());
    this.startedAtS = Math.floor(Date.now() / 1000) - 1;
    await this.container.start();
    this.expiry = setTimeout(() => {
      this.kill(new SandboxError("job_timeout", `the sandbox exceeded its wall-clock cap of ${jobTimeoutS} s`));
    }, jobTimeoutS * 1000);
    this.expiry.unref();
    if (mode === "copy") await this.copyTree(signal);
    signal?.throwIfAborted();
    // Not awaited: the shell comes up while the job goes on (a model's first turn hides it;
    // ~65 ms on a slow engine). Its first command waits for it, and fails as it would have if
    // the shell never answers. A lazy sandbox starts it with the first command.
    if (!this.spec.lazyShell) this.terminal.start().catch(() => undefined);
  }

  private async onStreamClosed() {
    // A shell that never answered failed the terminal only: execs still need to hear of it.
    if (this.destroyed) return;
    this.stopping = true;
    let detail = "";
    // Stopped by the engine (restarting, or an operator's `docker stop`) or removed while it ran:
    // not the job's doing, and another run may answer it. What runs inside can end its own
    // server too, but not make the engine say it killed it, nor remove the container.
    let outside = false;
    try {
      // Bounded: commands sent meanwhile wait for the answer, and a hung engine would hold them to the job's end.
      const state = (await this.container.inspect({ abortSignal: AbortSignal.timeout(INSPECT_STOPPED_MS) } as Dockerode.ContainerInspectOptions)).State;
      detail = state.OOMKilled ? " (killed: out of memory)" : ` (exit code ${state.ExitCode})`;
      outside = !state.OOMKilled && (await this.provider.stoppedByEngine(this.container.id, this.startedAtS, state.ExitCode));
    } catch {
      detail = " (container gone)";
      outside = true;
    }
    const err = this.stderr.text().trim().split("\n").slice(-3).join(" | ");
    this.kill(
      outside
        ? new SandboxError("stopped_outside", `the sandbox was stopped from outside it (the Docker engine stopping, or an operator)${detail}`)
        : new SandboxError("terminal_died", `the sandbox terminal server stopped${detail}${err ? `: ${err}` : ""}`),
    );
  }

  /** Fails the terminal with `err` and removes the container. */
  private kill(err: SandboxError) {
    this.terminal.fail(err);
    this.execs.fail(err);
    void this.destroy();
  }

  /** Streams the host tree into the root-owned tmpfs as root (tar runs capability-less). */
  private async copyTree(signal?: AbortSignal) {
    const exec = await this.container.exec({
      Cmd: ["sh", "-c", 'mkdir -p "$1" && exec tar -x -f - -C "$1" --no-same-owner --no-same-permissions', "sh", this.workingDir],
      User: "0:0",
      AttachStdin: true,
      AttachStdout: true,
      AttachStderr: true,
      Tty: false,
    });
    const io = (await exec.start({ hijack: true, stdin: true })) as Duplex;
    const out = new CappedBuffer(8192);
    demux(io, (b) => out.push(b), (b) => out.push(b));
    const tar = spawn("tar", ["-c", "-f", "-", "-C", this.spec.treePath, "."], { stdio: ["ignore", "pipe", "pipe"], signal });
    const tarErr = new CappedBuffer(4096);
    tar.stderr.on("data", (b: Buffer) => tarErr.push(b));
    // The copy inside may die mid-stream (the tree outgrew the sandbox's memory, the container
    // went). Its output then ends, or the socket fails the next write, while the host's tar still
    // writes: unstopped, that tar waits for ever on input nobody reads (the engine keeps the
    // socket open), and an unheard socket error would end the process.
    let tarDone = false;
    let cutShort: string | undefined;
    const stopTar = (why: string) => {
      if (tarDone) return;
      cutShort ??= why;
      // Its output, unread, would hold its 'close' back too.
      tar.stdout.unpipe(io);
      tar.stdout.destroy();
      tar.kill();
    };
    const ended = new Promise<void>((resolve) =>
      io
        .on("end", () => (stopTar("the copy inside ended before the tree did"), resolve()))
        .on("close", () => (stopTar("the copy inside ended before the tree did"), resolve()))
        .on("error", (err) => (stopTar(`the copy inside stopped reading (${err.message})`), resolve())),
    );
    tar.stdout.pipe(io, { end: false });
    const tarCode = await new Promise<number | null>((resolve, reject) => {
      tar.on("error", reject);
      tar.on("close", (code) => {
        tarDone = true;
        resolve(code);
      });
    });
    // Half-close: the in-container tar sees end of input and finishes.
    (io as Duplex & { end(): void }).end();
    await ended;
    // A container that died with its copy (its memory cgroup's OOM kill) has no exec left to ask.
    const ExitCode = await exec.inspect().then((i) => i.ExitCode, () => "unknown (the container is gone)");
    if (tarCode !== 0 || ExitCode !== 0 || cutShort) {
      const why = (tarErr.text() + out.text()).trim().slice(0, 500) || `${cutShort ?? "tar failed"}: exit ${ExitCode}`;
      throw new SandboxError("create_failed", `copying the tree into the sandbox failed: ${why}`);
    }
  }

  async exec(argv: string[], options: ExecOptions = {}): Promise<ExecResult> {
    if (argv.length === 0) throw new SandboxError("create_failed", "exec needs a command");
    if (options.stdin === undefined || Buffer.byteLength(options.stdin) <= MAX_CHANNEL_STDIN) {
      const result = await this.execs.run(argv, options);
      if (result) return result;
    }
    return this.engineExec(argv, options);
  }

  /**
   * Through the engine: for an input too large for one request line to the server, when the
   * server cannot start a process because the sandbox's process limit is reached (a fork bomb;
   * the engine's exec still gets in, so the bomb can be killed and answers checked), or when the
   * sandbox image's server predates the `exec` request.
   */
  private async engineExec(argv: string[], options: ExecOptions): Promise<ExecResult> {
    const timeoutMs = options.timeoutMs ?? 30_000;
    const cap = options.maxOutputBytes ?? DEFAULT_EXEC_BYTES;
    // coreutils `timeout` kills the process inside the container, where the host cannot reach it.
    const cmd = ["timeout", "-s", "KILL", `${Math.max(0.001, timeoutMs / 1000)}`, ...argv];
    let exec: Dockerode.Exec;
    try {
      exec = await this.container.exec({
        Cmd: cmd,
        User: `${SANDBOX_UID}:${SANDBOX_UID}`,
        WorkingDir: this.workingDir,
        AttachStdin: options.stdin !== undefined,
        AttachStdout: true,
        AttachStderr: true,
        Tty: false,
      });
    } catch (err) {
      throw new SandboxError("terminal_died", `exec failed: ${(err as Error).message}`, { cause: err });
    }
    const io = (await exec.start({ hijack: true, stdin: options.stdin !== undefined })) as Duplex;
    const stdout = new CappedBuffer(cap);
    const stderr = new CappedBuffer(cap);
    demux(io, (b) => stdout.push(b), (b) => stderr.push(b));
    const done = new Promise<void>((resolve) => io.on("end", resolve).on("close", resolve).on("error", () => resolve()));
    if (options.stdin !== undefined) io.end(options.stdin);
    let timedOut = false;
    const guard = setTimeout(() => {
      timedOut = true;
      io.destroy();
    }, timeoutMs + 5_000);
    await done;
    clearTimeout(guard);
    const info = await exec.inspect().catch(() => null);
    const exitCode = info?.ExitCode ?? -1;
    return {
      exitCode,
      stdout: stdout.text(),
      stderr: stderr.text(),
      truncated: stdout.truncated || stderr.truncated,
      timedOut: timedOut || exitCode === 137,
    };
  }

  async yieldCpu(yielding: boolean): Promise<void> {
    await this.container.update({ CpuShares: yielding ? YIELDING_CPU_SHARES : NORMAL_CPU_SHARES });
  }

  destroy(): Promise<void> {
    this.destroyed ??= (async () => {
      if (this.expiry) clearTimeout(this.expiry);
      const gone = new SandboxError("terminal_died", "the sandbox was destroyed");
      this.terminal.fail(gone);
      this.execs.fail(gone);
      this.stream?.destroy();
      await removeContainer(this.container);
      this.provider.forget(this.id);
    })();
    return this.destroyed;
  }
}

async function removeContainer(container: Dockerode.Container): Promise<boolean> {
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      await container.remove({ force: true, v: true });
      return true;
    } catch (err) {
      const code = (err as { statusCode?: number }).statusCode;
      if (code === 404) return false;
      // 409: removal already in progress; wait for it.
      if (code === 409) {
        await new Promise((r) => setTimeout(r, 200));
        continue;
      }
      if (attempt === 4) return false;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  return false;
}

/** How long a container of this process's own may be unknown to it: the time a start takes, and more. */
const CREATING_GRACE_S = 120;

/** This process's pid namespace (its inode), in which its pid, and those it can see, are read. */
export const PID_NAMESPACE = (() => {
  try {
    return /\[(\d+)\]/.exec(readlinkSync("/proc/self/ns/pid"))?.[1] ?? "";
  } catch {
    return "";
  }
})();

function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

function sanitize(s: string): string {
  return s.replace(/[^A-Za-z0-9_.-]/g, "_") || "job";
}

function classifyEngineError(err: unknown, image: string): SandboxError {
  const e = err as { statusCode?: number; code?: string; message?: string };
  if (e.statusCode === 404 && /image/i.test(e.message ?? "" + String(err))) {
    return new SandboxError("image_missing", `sandbox image ${image} is missing: run docker/build-sandbox-image.sh`, { cause: err });
  }
  if ((err as Error | undefined)?.name === "AbortError" || (err as Error | undefined)?.name === "TimeoutError") {
    return new SandboxError("engine_unreachable", "the Docker engine did not answer in time", { cause: err });
  }
  if (e.code === "ECONNREFUSED" || e.code === "ENOENT" || e.code === "EACCES" || e.code === "ETIMEDOUT") {
    return new SandboxError("engine_unreachable", `the Docker engine is unreachable: ${e.message ?? e.code}`, { cause: err });
  }
  // An engine on another host or in another mount namespace sees none of this worker's trees.
  if (/bind source path does not exist/i.test(e.message ?? "")) {
    return new SandboxError("create_failed", `the Docker engine cannot see the job's tree (${e.message}): an engine that does not share this worker's file system needs SANDBOX_MOUNT_MODE=copy`, { cause: err });
  }
  return new SandboxError("create_failed", `the Docker engine refused the sandbox: ${e.message ?? String(err)}`, { cause: err });
}

export type { DockerSandbox };

/** What the worker calls with its parsed config. */
export function createDockerSandboxProvider(options: DockerSandboxOptions): DockerSandboxProvider {
  return new DockerSandboxProvider(options);
}
