import { describe, expect, it } from "vitest";
import { Cleanups } from "../../src/worker/cleanups.js";

/** A cleanup that ends when the test says so. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  let done = false;
  const cleanup = async () => {
    await opened;
    done = true;
  };
  return { cleanup, open, isDone: () => done };
}

describe("Cleanups", () => {
  it("lets the job go on while its cleanup runs, and settle waits for it", async () => {
    const cleanups = new Cleanups(2, () => undefined);
    const a = gate();
    await cleanups.run(a.cleanup); // resolves before the cleanup is done
    expect(a.isDone()).toBe(false);
    expect(cleanups.size).toBe(1);
    let settled = false;
    const settling = cleanups.settle().then(() => (settled = true));
    await new Promise((r) => setTimeout(r, 20));
    expect(settled).toBe(false);
    a.open();
    await settling;
    expect(a.isDone()).toBe(true);
    expect(cleanups.size).toBe(0);
  });

  it("makes a job wait for its own cleanup once the bound is reached", async () => {
    const cleanups = new Cleanups(1, () => undefined);
    const a = gate();
    const b = gate();
    await cleanups.run(a.cleanup);
    let returned = false;
    const second = cleanups.run(b.cleanup).then(() => (returned = true));
    await new Promise((r) => setTimeout(r, 20));
    expect(returned).toBe(false);
    b.open();
    await second;
    expect(b.isDone()).toBe(true);
    expect(cleanups.size).toBe(1); // the first one still runs in the background
    a.open();
    await cleanups.settle();
    expect(cleanups.size).toBe(0);
  });

  it("reports a failed cleanup instead of throwing it at the job or at settle", async () => {
    const errors: unknown[] = [];
    const cleanups = new Cleanups(1, (err) => errors.push(err));
    await cleanups.run(async () => {
      throw new Error("engine gone");
    });
    await cleanups.settle();
    // Past the bound, the job waits for its cleanup and still does not see it fail.
    await cleanups.run(async () => {
      await new Promise((r) => setTimeout(r, 5));
    });
    await expect(cleanups.run(async () => Promise.reject(new Error("again")))).resolves.toBeUndefined();
    await cleanups.settle();
    expect(errors.map((e) => (e as Error).message)).toEqual(["engine gone", "again"]);
  });
});
