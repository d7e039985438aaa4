import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["tests/**/*.test.ts"],
    // Removes each file's temp dirs, and the trees on tmpfs derived from them, after it.
    setupFiles: ["tests/helpers/setup.ts"],
    // Tests share one Docker engine and one Redis; each test isolates itself with unique
    // queue names, labels and temp dirs, but the machine has 2 cores.
    fileParallelism: true,
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
