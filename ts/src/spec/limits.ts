/**
 * Size limits on what a spec may ask for, so that every request has a
 * bounded cost. Each one is refused as SPEC_INVALID with a message naming
 * the limit, and `hello` announces them all (protocol: "Limits").
 */
import { SpecError } from "./api";

export const SPEC_LIMITS = {
  /** Nesting of maps and lists inside a spec (the spec map itself is 1). */
  spec_depth: 16,
  /** Values in a spec: maps, lists and scalars (map keys not counted). */
  spec_nodes: 16384,
  /** Characters in one expression (lr_lambda, scale_fn). */
  expr_length: 1024,
  /** Nesting of one expression's syntax tree. */
  expr_depth: 64,
  /** Children of one composite (ChainedScheduler, SequentialLR, join, multiply, combine phases, piecewise values). */
  pieces: 256,
  /** Milestones of one MultiStepLR or SequentialLR, boundaries of one piecewise or join. */
  milestones: 1024,
  /** Largest fractal `horizon`. */
  fractal_horizon: 65536,
  /** Largest range_test `num_steps`. */
  range_test_steps: 4096,
} as const;

export type SpecLimit = keyof typeof SPEC_LIMITS;

export function overLimit(path: string, limit: SpecLimit, what: string): never {
  throw new SpecError(path, `${what} is over the limit ${limit} = ${SPEC_LIMITS[limit]}`);
}

export function checkListLimit(path: string, length: number, limit: SpecLimit): void {
  if (length > SPEC_LIMITS[limit]) overLimit(path, limit, `a list of ${length} entries`);
}

/**
 * Depth, size and number kinds of a raw spec, before any validation walks it
 * recursively. Iterative, so a deep spec cannot exhaust the stack here. A
 * bigint (an integer beyond 2^53 on the wire) is refused where it is.
 */
export function checkSpecShape(spec: unknown, root = "spec"): void {
  const stack: { value: unknown; path: string; depth: number }[] = [{ value: spec, path: "", depth: 1 }];
  let nodes = 0;
  while (stack.length > 0) {
    const { value, path, depth } = stack.pop()!;
    if (++nodes > SPEC_LIMITS.spec_nodes) overLimit(path || root, "spec_nodes", `a spec of more than ${SPEC_LIMITS.spec_nodes} values`);
    if (typeof value === "bigint") throw new SpecError(path || root, `integer ${value} is beyond 2**53: not a number a schedule can use`);
    if (value === null || typeof value !== "object" || value instanceof Uint8Array) continue;
    if (depth > SPEC_LIMITS.spec_depth) overLimit(path || root, "spec_depth", `nesting ${depth} deep`);
    if (Array.isArray(value)) {
      value.forEach((v, i) => stack.push({ value: v, path: `${path}[${i}]`, depth: depth + 1 }));
    } else {
      for (const [k, v] of Object.entries(value)) stack.push({ value: v, path: path ? `${path}.${k}` : k, depth: depth + 1 });
    }
  }
}
