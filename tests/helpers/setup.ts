import { afterAll } from "vitest";
import { removeTestConfigDirs } from "./config.js";

// Registered first, so it runs after each test file's own afterAll (hooks run as a stack):
// the file's worker processes are stopped before their cache dirs go.
afterAll(removeTestConfigDirs);
