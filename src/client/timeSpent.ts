/**
 * Where a failed job's time went, for whoever reads the failure (the calling model, the CLI's
 * user): its longest phase when that took most of it, which says what to mend (a slow fetch: an
 * upload or a scope; a long wait: the service's workers). "" when no phase did.
 */
export function timeSpent(timings: Partial<Record<string, number>> | undefined): string {
  if (!timings?.total_ms) return "";
  const phases: Array<[string, string]> = [
    ["queue_wait_ms", "waiting for a worker"],
    ["repo_ms", "fetching the repository"],
    ["sandbox_ms", "starting the sandbox"],
  ];
  const [key, what] = phases.reduce((a, b) => ((timings[b[0]] ?? 0) > (timings[a[0]] ?? 0) ? b : a));
  const longest = timings[key] ?? 0;
  return longest >= timings.total_ms / 2 && longest >= 1000 ? `; ${Math.round(longest / 1000)} s of its ${Math.round(timings.total_ms / 1000)} s went to ${what}` : "";
}
