// Starts a TypeScript entry point of this checkout (the CLI, the stdio MCP server) the fast way.
// tsx compiles on every start (~0.9 s here, the better part of a baseline answer); a bundle made
// once by esbuild starts in ~0.3 s. The bundle is named after the sources' paths, sizes and
// times, so an edited checkout builds a new one on its next start instead of running old code.
// Where none can be made (a read-only install), or with CODESCOUT_FROM_SOURCE=1, tsx runs the
// sources as before.
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, renameSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
/** Inside the checkout's node_modules, so the bundle's package imports resolve from there. */
const BUNDLE_DIR = join(root, "node_modules", ".cache", "codescout-bin");

function fingerprint() {
  const hash = createHash("sha256");
  const add = (path) => {
    const st = statSync(path);
    hash.update(`${path}\0${st.size}\0${st.mtimeMs}\n`);
  };
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const path = join(dir, e.name);
      if (e.isDirectory()) walk(path);
      else add(path);
    }
  };
  walk(join(root, "src"));
  add(join(root, "package.json"));
  add(join(root, "tsconfig.json"));
  return hash.digest("hex").slice(0, 16);
}

/** The bundle of `entry` for the sources as they are now, built if there is none; null where none can be. */
async function bundle(entry, name, dir) {
  try {
    const out = join(dir, `${name}-${fingerprint()}.mjs`);
    if (statSync(out, { throwIfNoEntry: false })) return out;
    const { build } = await import("esbuild");
    mkdirSync(dir, { recursive: true });
    const tmp = `${out}.${process.pid}.tmp`;
    await build({ entryPoints: [join(root, entry)], outfile: tmp, bundle: true, platform: "node", format: "esm", target: "node20", packages: "external", logLevel: "silent" });
    // Atomic: a start beside this one runs either no bundle or a whole one.
    renameSync(tmp, out);
    // Older sources' bundles go (not another start's build in progress: a .tmp).
    for (const old of readdirSync(dir)) if (old.startsWith(`${name}-`) && old.endsWith(".mjs") && join(dir, old) !== out) rmSync(join(dir, old), { force: true });
    return out;
  } catch {
    return null;
  }
}

/** Runs `entry` (a path from the checkout's top) with this process's arguments. */
export async function start(entry, name) {
  const out = process.env.CODESCOUT_FROM_SOURCE === "1" ? null : await bundle(entry, name, process.env.CODESCOUT_BUNDLE_DIR ?? BUNDLE_DIR);
  if (out) {
    // In this process: its arguments, stdio and signals are the entry's own.
    await import(pathToFileURL(out).href);
    return;
  }
  const tsx = join(root, "node_modules", "tsx", "dist", "loader.mjs");
  const child = spawn(process.execPath, ["--import", pathToFileURL(tsx).href, join(root, entry), ...process.argv.slice(2)], { stdio: "inherit" });
  for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => child.kill(signal));
  child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
}
