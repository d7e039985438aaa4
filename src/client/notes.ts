/**
 * What is said beside an answer: the service's notes on what it could not search (a repository's
 * submodules), then the client's on a local checkout. Where the client speaks of a checkout's
 * submodules it says more (how to search one), and the service's note on them goes.
 */
export function notesOf(result: { notes?: string[] | undefined } | null | undefined, checkoutNotes: readonly string[] = []): string[] {
  const told = (topic: string) => checkoutNotes.some((n) => n.includes(topic));
  return [...(result?.notes ?? []).filter((n) => !(n.includes("submodule") && told("submodule"))), ...checkoutNotes];
}
