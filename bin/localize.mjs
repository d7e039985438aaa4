#!/usr/bin/env node
// The command-line client (src/cli/localize.ts), so `npx localize` works from a checkout.
import { start } from "./entry.mjs";
await start("src/cli/localize.ts", "localize");
