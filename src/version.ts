/** The service's version, shown in the OpenAPI document and the MCP server's identity. */
export const API_VERSION = "0.9.6";

/**
 * The version whose answers the service gives, which the result cache's key names: a change that
 * answers otherwise (0.9.4: a file that is not source code the issue names; trees by URL as
 * committed, export-ignore paths kept; a tree past the scan's 20,000 files read by the issue's
 * words first; 0.9.6: tests by Django's names, generated and minified files, and what .gitattributes
 * marks generated are not read) sets it to its own version, and old answers are not
 * served. A release that answers the same (0.9.5) keeps it, and the answers cached before it are
 * served still.
 */
export const ANSWERS_OF = "0.9.6";

/**
 * A digest of the baseline's fitted weights and calibration (src/agent/baseline/weights.ts,
 * calibration.ts). A refit answers otherwise under the same ANSWERS_OF, so the result cache's
 * key names it too; tests/agent/baselineFit.test.ts fails, giving the new digest, when a refit
 * leaves it behind. Written out rather than computed so that the API, which never imports the
 * agent, names the same answerer as the worker.
 */
export const BASELINE_FIT = "6fefadfd86dc";

/** The answerer the result cache's key names: what the service returns and how it ranks. */
export const ANSWER_REVISION = `${ANSWERS_OF}+${BASELINE_FIT}`;
