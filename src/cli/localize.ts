import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { CheckoutError, localizeCheckout } from "../client/checkout.js";
import { ServiceClient, ServiceRefused, ServiceUnreachable } from "../client/service.js";
import type { JobEvent } from "../store/events.js";
import type { JobView } from "../store/jobStore.js";
import { printable } from "../client/printable.js";
import { timeSpent } from "../client/timeSpent.js";
import { notesOf } from "../client/notes.js";

/**
 * The small client: submit a job, follow its progress in the terminal, print the answer.
 *
 *   localize --repo URL --commit SHA [--patch-file FILE] --issue-file FILE [--api URL] [--policy baseline|codescout] [--json]
 *   localize --path DIR --issue TEXT          (a local checkout, uncommitted edits included)
 */
const USAGE = `usage: localize (--repo URL --commit SHA|REF [--patch-file FILE|-] | --path DIR) (--issue TEXT | --issue-file FILE|-)
                [--api URL] [--policy baseline|codescout] [--max-turns N] [--snippets] [--no-alternatives]
                [--scope DIR] [--json] [--quiet] [--no-cache]
  --issue TEXT, --issue-file FILE  the issue or question; --issue-file - reads it from stdin.
  --patch-file FILE  changes on top of --commit to localize with (\`git diff --binary <commit>\` as it
               prints it: a pull request's diff, an edit not pushed); - reads it from stdin.
  --no-alternatives  the answer alone, without the files the model-free ranking would read next.
  --path DIR   localize in a local checkout as it is on disk: url + commit + patch when HEAD is on a
               remote the service can fetch, else an upload of the files git does not ignore. A
               directory below the checkout's top is searched alone (its --scope).
  --scope DIR  search only this directory of the repository (a monorepo's package: packages/core);
               the answer's paths stay relative to the repository's top.
  The API key comes from CODESCOUT_API_KEY; the API URL from --api, CODESCOUT_URL or CODESCOUT_API
  (default http://127.0.0.1:8080).`;

function fail(message: string): never {
  process.stderr.write(`localize: ${message}\n${USAGE}\n`);
  process.exit(2);
}

function parse() {
  try {
    return parseArgs({
      options: {
        api: { type: "string" },
        repo: { type: "string" },
        commit: { type: "string" },
        path: { type: "string" },
        issue: { type: "string" },
        "issue-file": { type: "string" },
        "patch-file": { type: "string" },
        policy: { type: "string" },
        "max-turns": { type: "string" },
        snippets: { type: "boolean", default: false },
        json: { type: "boolean", default: false },
        quiet: { type: "boolean", default: false },
        "no-cache": { type: "boolean", default: false },
        "no-alternatives": { type: "boolean", default: false },
        scope: { type: "string" },
        help: { type: "boolean", default: false },
      },
      strict: true,
    }).values;
  } catch (err) {
    fail((err as Error).message);
  }
}

const args = parse();
if (args.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
if (args.path && (args.repo || args.commit)) fail("--path is a local checkout; it does not go with --repo/--commit");
if (args.path && args["patch-file"] !== undefined) fail("--path sends the checkout's own changes; --patch-file goes with --repo/--commit");
if (args["issue-file"] === "-" && args["patch-file"] === "-") fail("only one of --issue-file and --patch-file can read stdin");
if (!args.path) {
  if (!args.repo) fail("--repo (or --path) is required");
  if (!args.commit) fail("--commit is required with --repo");
}
if (args.issue !== undefined && args["issue-file"] !== undefined) fail("give the issue once: --issue TEXT or --issue-file FILE");
if (args.issue === undefined && args["issue-file"] === undefined) fail("--issue TEXT or --issue-file FILE is required");
if (args.policy && args.policy !== "baseline" && args.policy !== "codescout") fail(`--policy must be baseline or codescout, not ${args.policy}`);
const maxTurns = args["max-turns"] === undefined ? undefined : Number(args["max-turns"]);
if (maxTurns !== undefined && (!Number.isInteger(maxTurns) || maxTurns < 1)) fail("--max-turns must be a positive integer");
let issue: string;
try {
  // File descriptor 0 is stdin: `gh issue view 12 --json body -q .body | localize --path . --issue-file -`.
  issue = args.issue ?? readFileSync(args["issue-file"] === "-" ? 0 : args["issue-file"]!, "utf8");
} catch (err) {
  fail(`cannot read the issue ${args["issue-file"] === "-" ? "from stdin" : "file"}: ${(err as Error).message}`);
}
let patch: string | undefined;
try {
  if (args["patch-file"] !== undefined) patch = readFileSync(args["patch-file"] === "-" ? 0 : args["patch-file"], "utf8");
} catch (err) {
  fail(`cannot read the patch ${args["patch-file"] === "-" ? "from stdin" : "file"}: ${(err as Error).message}`);
}

const api = args.api ?? process.env.CODESCOUT_URL ?? process.env.CODESCOUT_API ?? "http://127.0.0.1:8080";
const client = new ServiceClient(api, process.env.CODESCOUT_API_KEY || undefined);
const say = (line: string) => {
  if (!args.quiet) process.stderr.write(`${printable(line)}\n`);
};
const onEvent = (event: JobEvent) => {
  const d = event.data ?? {};
  if (event.type === "queued") say(`job ${String(d.job ?? "")} queued`);
  else if (event.type === "turn") say(`  turn ${d.turn}/${d.max_turns}`);
  else if (event.type === "command") say(`    $ ${d.command}`);
  else if (event.type === "no_worker") say(`  ${String(d.message)}`);
  else say(`  ${event.type}${Object.keys(d).length ? ` ${JSON.stringify(d)}` : ""}`);
};

const options: Record<string, unknown> = {};
if (args.policy) options.policy = args.policy;
if (maxTurns) options.max_turns = maxTurns;
if (args.snippets) options.snippets = true;
if (args["no-cache"]) options.cache = false;
if (args["no-alternatives"]) options.alternatives = false;
if (args.scope !== undefined) options.scope = args.scope;

const interrupt = new AbortController();
// One Ctrl-C cancels the job (and waits for that to be sent); another, later, forces the exit.
// The same Ctrl-C can come twice within a moment: run through tsx, the parent forwards what
// the terminal already sent its whole process group.
let interruptedAt = 0;
process.on("SIGINT", () => {
  if (!interrupt.signal.aborted) {
    interruptedAt = Date.now();
    interrupt.abort();
  } else if (Date.now() - interruptedAt > 1000) process.exit(130);
});

let final: JobView;
/** A checkout's top directory: the answer's paths are relative to it, wherever below it --path was. */
let root: string | undefined;
/** What the answer does not show of the checkout (a submodule not searched, edits not sent). */
let notes: string[] = [];
try {
  if (args.path) ({ view: final, root, notes } = await localizeCheckout(client, args.path, { issue, options }, { signal: interrupt.signal, onEvent, say }));
  else final = await client.follow(await client.submit({ repo: { url: args.repo, commit: args.commit, ...(patch ? { patch } : {}) }, issue, options }), { signal: interrupt.signal, onEvent });
} catch (err) {
  if (err instanceof ServiceRefused) {
    process.stderr.write(`localize: the API refused the job (${printable(`${err.status} ${err.code}): ${err.message}${err.field ? ` [${err.field}]` : ""}`)}\n`);
    process.exit(1);
  }
  if (err instanceof ServiceUnreachable) {
    process.stderr.write(`localize: ${err.message} (is it running? \`npm start\` in the codescout-service checkout starts one; --api or CODESCOUT_URL names another)\n`);
    process.exit(1);
  }
  if (err instanceof CheckoutError) {
    process.stderr.write(`localize: ${err.message}\n`);
    process.exit(1);
  }
  // Interrupted while the tree was read or sent (git's own processes get the Ctrl-C too): the job, if any, is cancelled.
  if (interrupt.signal.aborted) {
    process.stderr.write("localize: interrupted\n");
    process.exit(130);
  }
  // Anything else (a file git cannot read, the cache directory not writable) as one line, not a stack.
  process.stderr.write(`localize: ${(err as Error).message?.trim().split("\n").slice(0, 3).join(" | ") || String(err)}\n`);
  process.exit(1);
}

if (args.json) process.stdout.write(`${JSON.stringify({ ...final, ...(root ? { root } : {}), ...(notes.length ? { notes } : {}) }, null, 2)}\n`);
else if (final.status === "succeeded" && final.result) {
  if (final.result.scope) process.stdout.write(`searched in ${printable(final.result.scope)}/ only\n`);
  if (root && root !== process.cwd()) process.stdout.write(`paths are relative to ${root}\n`);
  const rows = final.result.locations.map((l) => [
    printable(l.start_line ? `${l.file}:${l.start_line}-${l.end_line}` : l.file),
    printable(l.class_name ?? ""),
    printable(l.function_name ?? ""),
    l.confidence ? `${l.confidence.file.toFixed(2)}${l.confidence.function === undefined ? "" : ` / ${l.confidence.function.toFixed(2)}`}` : "",
    l.valid ? "" : "(not found)",
  ]);
  const head = ["location", "class", "function", rows.some((r) => r[3]) ? "confidence" : "", ""];
  const width = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(width[i]!)).join("  ").trimEnd();
  // A location without a confidence is the model's: its evidence (where the model-free ranking
  // put its file) is what a reader has to weigh it by, so it is printed under it.
  const said = final.result.locations.map((l) => (l.confidence ? [] : (l.evidence ?? []).map((e) => `    ${printable(e)}`)));
  if (rows.length) process.stdout.write(`${line(head)}\n${width.map((w) => "-".repeat(w)).join("  ").trimEnd()}\n${rows.map((r, i) => [line(r), ...said[i]!].join("\n")).join("\n")}\n`);
  else process.stdout.write("no locations found\n");
  const leads = final.result.alternatives ?? [];
  if (leads.length) {
    const lead = (l: (typeof leads)[number]) =>
      printable([l.start_line ? `${l.file}:${l.start_line}-${l.end_line}` : l.file, [l.class_name, l.function_name].filter(Boolean).join("."), l.confidence ? l.confidence.file.toFixed(2) : ""].filter(Boolean).join("  "));
    // The model's locations have no confidence to compare with: its leads are the baseline's ranking.
    const title = final.result.policy === "baseline" ? "also considered, less likely" : rows.length ? "also considered, by the model-free ranking" : "where the model-free ranking would start reading";
    process.stdout.write(`\n${title}:\n${leads.map(lead).join("\n")}\n`);
  }
  const noted = notesOf(final.result, notes);
  if (noted.length) process.stdout.write(`\n${noted.map((n) => `note: ${printable(n)}`).join("\n")}\n`);
  const fallback = final.result.fallback;
  say(`(${final.result.policy}${fallback ? `, as the model server ${fallback.reason === "llm_timeout" ? "did not answer in time" : "could not be reached"}` : ""}, ${final.result.finish_reason})`);
} else process.stdout.write(`job ${final.status}: ${printable(`${final.error?.code ?? ""} ${final.error?.message ?? ""}${timeSpent(final.error?.timings)}`)}\n`);
// Exited once stdout is written: process.exit right after a write to a pipe drops what is past its first 64 KiB.
process.stdout.write("", () => process.exit(final.status === "succeeded" ? 0 : 1));
