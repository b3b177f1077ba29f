/**
 * Where a torch schedule ends: the first row whose `step()` raises (torch's
 * OneCycleLR refuses `last_epoch > total_steps`, also inside SequentialLR and
 * ChainedScheduler). Computed from a freshly constructed simulation, so the
 * composites' construction quirks (recursive_undo, the first child's initial
 * step, nested composites) are whatever the simulator did; then the step
 * counters are played forward in jumps instead of one step at a time.
 */
import { ChainedScheduler, OneCycleLR, SequentialLR, type TorchScheduler, bisectRight } from ".";

/** What decides refusal: the leaves' step counters and the composites' structure. */
type Counter =
  | { kind: "leaf"; lastEpoch: number; totalSteps: number }
  | { kind: "sequential"; lastEpoch: number; milestones: readonly number[]; children: Counter[] }
  | { kind: "chained"; children: Counter[] };

/**
 * First row refused, or null when every row exists. Construction leaves row
 * `firstRow` (0, or last_epoch + 1 for a resumed one); each step() is one row on.
 */
export function rowEndOf(top: TorchScheduler, firstRow: number): number | null {
  const steps = advance(counterOf(top), Infinity);
  return Number.isFinite(steps) ? firstRow + steps + 1 : null;
}

function counterOf(s: TorchScheduler): Counter {
  if (s instanceof SequentialLR) {
    return { kind: "sequential", lastEpoch: s.lastEpoch, milestones: s.milestones, children: s.schedulers.map(counterOf) };
  }
  if (s instanceof ChainedScheduler) return { kind: "chained", children: s.schedulers.map(counterOf) };
  // Only OneCycleLR refuses rows; every other leaf steps forever.
  const totalSteps = s instanceof OneCycleLR ? s.o.totalSteps : Infinity;
  return { kind: "leaf", lastEpoch: s.lastEpoch, totalSteps };
}

function copyOf(c: Counter): Counter {
  if (c.kind === "leaf") return { ...c };
  return { ...c, children: c.children.map(copyOf) };
}

/**
 * Plays up to `limit` plain `step()` calls on `c` and returns how many
 * succeed (fewer than `limit`: the next one raises; `c` is then spent).
 */
function advance(c: Counter, limit: number): number {
  switch (c.kind) {
    case "leaf": {
      // OneCycleLR.get_lr raises once last_epoch (incremented first) exceeds total_steps.
      const ok = Math.min(limit, Math.max(0, c.totalSteps - c.lastEpoch));
      c.lastEpoch += ok;
      return ok;
    }
    case "chained": {
      // Every child steps each time: the chain lasts as long as its shortest child.
      const ok = Math.min(limit, ...c.children.map((child) => advance(copyOf(child), limit)));
      for (const child of c.children) advance(child, ok);
      return ok;
    }
    case "sequential":
      return advanceSequential(c, limit);
  }
}

/**
 * SequentialLR.step(): last_epoch += 1, idx = bisect_right(milestones,
 * last_epoch); at a milestone the child restarts with `_update_lr(0)`, else it
 * steps. The child in charge only changes where last_epoch crosses a
 * milestone value, so the steps go in segments between those values.
 */
function advanceSequential(c: Extract<Counter, { kind: "sequential" }>, limit: number): number {
  const first = c.lastEpoch + 1;
  const stops = [...new Set(c.milestones)].filter((m) => m > first).sort((a, b) => a - b);
  let done = 0;
  let at = first;
  for (let i = 0; i <= stops.length && done < limit; i++) {
    const segmentEnd = i < stops.length ? stops[i] : Infinity;
    let steps = Math.min(segmentEnd - at, limit - done);
    const idx = bisectRight(c.milestones, at);
    const child = c.children[idx];
    if (idx > 0 && c.milestones[idx - 1] === at) {
      // _update_lr(0): only a leaf has get_lr there (validate refuses composites at a milestone).
      if (child.kind !== "leaf") return done;
      child.lastEpoch = 0;
      done += 1;
      steps -= 1;
    }
    const ok = advance(child, steps);
    done += ok;
    if (ok < steps) break;
    at = segmentEnd;
  }
  c.lastEpoch += done;
  return done;
}
