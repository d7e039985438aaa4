import { execFileSync } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { RepoCache } from "../src/repos/cache.js";
import { changesSinceUpload, uploadCheckout } from "../src/client/checkout.js";
import { Snapshot, TreeCache } from "../src/client/snapshot.js";
import { ServiceClient } from "../src/client/service.js";
import { DirUploadStore } from "../src/uploads/store.js";
import { startProcess, type ServiceProcess } from "../tests/helpers/processes.js";
import { dropPrefix } from "../tests/helpers/redis.js";
import { removeCacheDir } from "../tests/helpers/tempDirs.js";
import { ms, quick, report, stats, time } from "./lib.js";

/**
 * Uploading a working tree of ~50 MB and preparing it for a sandbox, uploading the same
 * tree again, and sending it edited as that upload and a patch. The tree is real source (sympy, pylint and pytest side by side), a git
 * checkout whose files are all untracked-but-not-ignored or tracked; the API is a real
 * process on loopback; "prepare" is the worker's extraction into its tree cache.
 *
 *   npx tsx bench/uploads.ts [--quick]
 * Needs the repositories brought by the search tool's fetch under /work/.mirror (see BENCHMARKS.md).
 */
const work = "/tmp/codescout-bench-uploads";
const root = join(work, "checkout");
const sources = ["sympy+sympy", "pylint-dev+pylint", "pytest-dev+pytest"];
rmSync(work, { recursive: true, force: true });
mkdirSync(root, { recursive: true });
const prefix = `bench-up-${process.pid}`;
let api: ServiceProcess | undefined;
// The repository caches made below: their trees are on the host's tmpfs, not in `work`.
const caches: string[] = [];
// However the run ends, the API stops (a child left behind runs on, re-parented, with no one to
// see it), and its keys, the checkout, uploads and caches go.
try {
  for (const s of sources) {
    const dest = join(root, s.split("+")[1]!);
    mkdirSync(dest);
    execFileSync("bash", ["-c", `git --git-dir /work/.mirror/${s}/repo archive HEAD | tar -x -C ${dest}`]);
  }
  const git = (...args: string[]) => execFileSync("git", ["-c", "user.name=b", "-c", "user.email=b@localhost", ...args], { cwd: root, encoding: "utf8" });
  git("init", "-q", "-b", "main");
  git("add", "-A");
  git("commit", "-qm", "tree");

  const port = 18000 + Math.floor(Math.random() * 1000);
  const uploadDir = join(work, "uploads");
  const env = { QUEUE_PREFIX: prefix, API_PORT: String(port), UPLOAD_DIR: uploadDir, LOG_LEVEL: "warn" };
  api = startProcess("src/api/server.ts", env);
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    if (await fetch(`${base}/healthz`).then((r) => r.ok, () => false)) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  const client = new ServiceClient(base);
  /** What the client does for a checkout: snapshot it with git and send the tree, unless the service holds it. */
  const sendTree = async (cache: TreeCache) => {
    const snap = await Snapshot.take(root, cache.dir);
    try {
      return await uploadCheckout(client, snap, () => undefined, cache);
    } finally {
      await snap.dispose();
    }
  };
  const store = new DirUploadStore(uploadDir, 3600);
  const limits = { maxBytes: 512 << 20, maxFiles: 100_000, maxPathBytes: 1024, maxRatio: 100 };

  const cold: Array<Record<string, number>> = [];
  let lastId = "";
  let size = { files: 0, bytes: 0, archive: 0 };
  for (let i = 0; i < (quick ? 2 : 5); i++) {
    // A new file each round: a tree the service has never seen, and a client cache that is empty.
    writeFileSync(join(root, "bench_round.py"), `ROUND = ${i}\n`);
    // What the client does for a tree it has not sent before: snapshot it with git and stream
    // the snapshot's tree (git archive straight into the request).
    const cache = new TreeCache(join(work, `client-cache-${i}`));
    const [uploadMs, info] = await time(() => sendTree(cache));
    caches.push(join(work, `repos-${i}`));
    const repos = new RepoCache({ dir: caches.at(-1)!, allowFileUrls: false, uploads: { store, limits } });
    const [prepareMs, prepared] = await time(() => repos.prepareUpload(info.upload_id));
    if (prepared.cache !== "warm") throw new Error(`expected a new tree, got ${prepared.cache} at ${prepared.treePath}`);
    cold.push({ upload_ms: uploadMs, prepare_ms: prepareMs, total_ms: uploadMs + prepareMs });
    lastId = info.upload_id;
    size = { files: info.files, bytes: info.bytes, archive: info.archive_bytes };
    rmSync(join(work, `repos-${i}`), { recursive: true, force: true });
    rmSync(repos.trees.dir, { recursive: true, force: true });
  }

  // The same tree again, as an agent's second call sends it: snapshot (git's stat cache warm),
  // the tree found in the client's cache, asked for by its address, not sent.
  const again: number[] = [];
  const warmCache = new TreeCache(join(work, `client-cache-${cold.length - 1}`));
  for (let i = 0; i < (quick ? 5 : 30); i++) {
    const [t, info] = await time(() => sendTree(warmCache));
    if (info.upload_id !== lastId) throw new Error("the repeated upload should be the same tree");
    again.push(t);
  }

  // Edited since: the last upload the service holds and a patch of the changes since, as an
  // agent's next call after an edit sends them (the client's side: snapshot and diff), and the
  // worker's: the upload's tree (already prepared) linked into a new place and the patch applied.
  const edited: Array<Record<string, number>> = [];
  caches.push(join(work, "repos-edited"));
  const editRepos = new RepoCache({ dir: caches.at(-1)!, allowFileUrls: false, uploads: { store, limits } });
  // The same edits make the same patched trees run after run: none may be left from the last.
  rmSync(editRepos.trees.dir, { recursive: true, force: true });
  await editRepos.prepareUpload(lastId);
  for (let i = 0; i < (quick ? 3 : 10); i++) {
    writeFileSync(join(root, "bench_round.py"), `ROUND = ${cold.length - 1}\nEDIT = ${i}\n`);
    const [clientMs, since] = await time(async () => {
      const snap = await Snapshot.take(root, warmCache.dir);
      try {
        return await changesSinceUpload(client, snap, warmCache);
      } finally {
        await snap.dispose();
      }
    });
    if (!since || since.upload.upload_id !== lastId) throw new Error("expected the last upload and a patch");
    const [prepareMs, prepared] = await time(() => editRepos.prepareUpload(lastId, undefined, since.patch));
    if (prepared.cache !== "warm") throw new Error(`expected a new patched tree, got ${prepared.cache}`);
    edited.push({ client_ms: clientMs, prepare_ms: prepareMs, total_ms: clientMs + prepareMs, patch_bytes: Buffer.byteLength(since.patch) });
  }
  rmSync(editRepos.trees.dir, { recursive: true, force: true });

  const pick = (k: string) => stats(cold.map((r) => r[k]!));
  report("uploads", {
    tree: { files: size.files, mb: ms(size.bytes / 1e6), archive_mb: ms(size.archive / 1e6), compressed: false },
    cold_upload_and_prepare_ms: Object.fromEntries(["upload_ms", "prepare_ms", "total_ms"].map((k) => [k, { p50: ms(pick(k).p50), max: ms(pick(k).max) }])),
    // The first round is also the API process's first upload (its code not yet optimized by V8).
    cold_total_ms_by_round: cold.map((r) => ms(r.total_ms!)),
    repeated_upload_ms: { p50: ms(stats(again).p50), p95: ms(stats(again).p95), max: ms(stats(again).max) },
    edited_upload_and_patch_ms: Object.fromEntries(
      ["client_ms", "prepare_ms", "total_ms"].map((k) => [k, { p50: ms(stats(edited.map((r) => r[k]!)).p50), max: ms(stats(edited.map((r) => r[k]!)).max) }]),
    ),
    edited_patch_bytes: stats(edited.map((r) => r.patch_bytes!)).p50,
    targets: { cold_total_ms: 1000, repeated_ms: 50 },
  });
} finally {
  await api?.stop();
  await dropPrefix(prefix);
  for (const dir of caches) removeCacheDir(dir);
  rmSync(work, { recursive: true, force: true });
}
