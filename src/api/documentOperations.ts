/** Every operation of an OpenAPI document (each method of each path), for the transforms that write into them after zod's. */
export function operationsOf<O>(doc: { paths?: unknown }): O[] {
  return Object.values((doc.paths ?? {}) as Record<string, Record<string, O>>).flatMap((item) => Object.values(item));
}
