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
  fractal_horizon: 16384,
  /** Largest range_test `num_steps`. */
  range_test_steps: 4096,
  /** Largest greedy `window_size` (the smoothing window a client carries). */
  greedy_window: 4096,
  /** Schedules in a spec (maps with a `type`) × param groups: what building one simulation costs. */
  open_work: 65536,
  /** Rows × groups × schedules in a spec: what one window costs; `opened.max_rows` says how many rows that allows. */
  window_work: 1 << 20,
  /** Characters of a module's code (`{"type": "module"}`). */
  module_code_length: 1 << 18,
  /** Memory one sandbox evaluation of a module may allocate. */
  module_memory_bytes: 16 << 20,
  /** Stack one sandbox evaluation of a module may use. */
  module_stack_bytes: 256 << 10,
  /** Time one sandbox evaluation may run (loading the module, or computing one block of rows). */
  module_eval_ms: 200,
  /** Sandbox time one request may spend over all its evaluations. */
  module_request_ms: 500,
  /** Schedules (maps with a `type`) in the spec a module's code builds. */
  module_schedules: 256,
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
 * With `groups`, also the cost of building it (open_work). Returns how many
 * schedules (maps with a `type`) the spec holds.
 */
export function checkSpecShape(spec: unknown, groups = 1, root = "spec"): number {
  // Paths are built only for an error: each stack entry points at its parent.
  interface Item {
    value: unknown;
    parent: Item | null;
    key: string | number;
    depth: number;
  }
  const pathOf = (item: Item): string => {
    const keys: (string | number)[] = [];
    for (let at: Item | null = item; at && at.parent; at = at.parent) keys.push(at.key);
    let path = "";
    for (let i = keys.length - 1; i >= 0; i--) path = typeof keys[i] === "number" ? `${path}[${keys[i]}]` : path ? `${path}.${keys[i]}` : String(keys[i]);
    return path || root;
  };
  let schedules = 0;
  let nodes = 1;
  const tooMany = (item: Item) => overLimit(pathOf(item), "spec_nodes", `a spec of more than ${SPEC_LIMITS.spec_nodes} values`);
  const stack: Item[] = [{ value: spec, parent: null, key: "", depth: 1 }];
  while (stack.length > 0) {
    const item = stack.pop()!;
    const value = item.value;
    if (typeof value === "bigint") throw new SpecError(pathOf(item), `integer ${value} is beyond 2**53: not a number a schedule can use`);
    if (value === null || typeof value !== "object" || value instanceof Uint8Array) continue;
    if (item.depth > SPEC_LIMITS.spec_depth) overLimit(pathOf(item), "spec_depth", `nesting ${item.depth} deep`);
    if (Array.isArray(value)) {
      if ((nodes += value.length) > SPEC_LIMITS.spec_nodes) tooMany(item);
      for (let i = 0; i < value.length; i++) stack.push({ value: value[i], parent: item, key: i, depth: item.depth + 1 });
    } else {
      const keys = Object.keys(value);
      if ((nodes += keys.length) > SPEC_LIMITS.spec_nodes) tooMany(item);
      if (typeof (value as { type?: unknown }).type === "string") schedules += 1;
      for (const k of keys) stack.push({ value: (value as Record<string, unknown>)[k], parent: item, key: k, depth: item.depth + 1 });
    }
  }
  if (Math.max(1, schedules) * groups > SPEC_LIMITS.open_work) {
    overLimit(root, "open_work", `${schedules} schedules × ${groups} param groups`);
  }
  return Math.max(1, schedules);
}

/** The most rows one window of a spec with `schedules` schedules over `groups` groups may have (window_work). */
export function maxRowsFor(schedules: number, groups: number): number {
  return Math.max(1, Math.floor(SPEC_LIMITS.window_work / (Math.max(1, schedules) * groups)));
}
