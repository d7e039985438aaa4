import { afterAll, describe, expect, it } from "vitest";
import { execFile } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";

/**
 * bin/entry.mjs, which the `localize` and `codescout-mcp` commands start through: a checkout of
 * its own (bin/, src/, the repository's node_modules linked), so its sources can be edited here.
 */
const top = mkdtempSync(join(tmpdir(), "codescout-entry-"));
afterAll(() => rmSync(top, { recursive: true, force: true }));
mkdirSync(join(top, "bin"));
mkdirSync(join(top, "src"));
copyFileSync(resolve("bin/entry.mjs"), join(top, "bin", "entry.mjs"));
writeFileSync(join(top, "bin", "hello.mjs"), 'import { start } from "./entry.mjs";\nawait start("src/hello.ts", "hello");\n');
writeFileSync(join(top, "package.json"), '{ "type": "module" }\n');
writeFileSync(join(top, "tsconfig.json"), "{}\n");
symlinkSync(resolve("node_modules"), join(top, "node_modules"));
const bundles = join(top, "bundles");

const source = (word: string, exitCode = 0) =>
  writeFileSync(join(top, "src", "hello.ts"), `const word: string = ${JSON.stringify(word)};\nconsole.log(word, process.argv.slice(2).join(" "));\nprocess.exitCode = ${exitCode};\n`);

async function hello(env: Record<string, string> = {}): Promise<{ out: string; code: number }> {
  const r = await promisify(execFile)(process.execPath, [join(top, "bin", "hello.mjs"), "a", "b"], { env: { ...process.env, CODESCOUT_BUNDLE_DIR: bundles, ...env }, encoding: "utf8" }).then(
    (ok) => ({ stdout: ok.stdout, code: 0 }),
    (err: { stdout: string; code: number }) => ({ stdout: err.stdout, code: err.code }),
  );
  return { out: r.stdout.trim(), code: r.code };
}

describe("bin/entry.mjs", () => {
  it("runs a bundle of the sources, made again when they change, with the arguments and exit code of the command", async () => {
    source("one");
    expect(await hello()).toEqual({ out: "one a b", code: 0 });
    const first = readdirSync(bundles);
    expect(first).toEqual([expect.stringMatching(/^hello-[0-9a-f]{16}\.mjs$/)]);
    expect(await hello()).toEqual({ out: "one a b", code: 0 });
    expect(readdirSync(bundles)).toEqual(first);

    // An edited checkout never runs the old code: a new bundle, the old one gone.
    source("two", 3);
    expect(await hello()).toEqual({ out: "two a b", code: 3 });
    const second = readdirSync(bundles);
    expect(second).toHaveLength(1);
    expect(second).not.toEqual(first);

    // From the sources through tsx, as before bundles: the same answer, no bundle made.
    source("three");
    expect(await hello({ CODESCOUT_FROM_SOURCE: "1" })).toEqual({ out: "three a b", code: 0 });
    expect(readdirSync(bundles)).toEqual(second);
  });

  it("runs the sources through tsx where no bundle can be written", async () => {
    source("four");
    writeFileSync(join(top, "not-a-dir"), "");
    expect(await hello({ CODESCOUT_BUNDLE_DIR: join(top, "not-a-dir", "bundles") })).toEqual({ out: "four a b", code: 0 });
  });
});
