/**
 * Validation of torch-scheduler specs: torch's names and defaults and
 * torch's own constructor checks. What torch accepts and then fails on later
 * (a division by zero at some step) is accepted here too: the simulation
 * stops the rows at that step with torch's exception. Produces the canonical
 * spec: every field explicit, so equal schedules hash equally.
 */
import { SpecError } from "../core/api";
import { describe } from "../core/fields";
import { oneCyclePhases } from "./cyclic";
import { TorchFields } from "./fields";
import { type CanonicalSpec, TORCH_CLASSES, isTorchType } from "./classes";

export { CHAINABLE_TYPES, TORCH_TYPES, type CanonicalSpec, type TorchType, isLibraryChild, isTorchType } from "./classes";
export { join as joinPath } from "../core/fields";
import { join as joinPath } from "../core/fields";

/** Validates a spec for `groups` param groups and returns its canonical form. */
export function validateTorchSpec(spec: unknown, groups: number, path = ""): CanonicalSpec {
  if (spec === null || typeof spec !== "object" || Array.isArray(spec)) {
    throw new SpecError(path, `a spec must be an object with a "type", got ${describe(spec)}`);
  }
  const obj = spec as Record<string, unknown>;
  const type = obj.type;
  if (!isTorchType(type)) {
    throw new SpecError(joinPath(path, "type"), `unknown scheduler type ${describe(type)}`);
  }
  const f = new TorchFields(obj, path, type);
  const out = TORCH_CLASSES[type].read(f, groups);
  f.finish();
  return { type, ...out };
}

/** The first step t in [0, total] whose phase has end == start (pct = x/0), or null. */
export function oneCycleZeroDivisionStep(total: number, pctStart: number, threePhase: boolean): number | null {
  const phases = oneCyclePhases(total, pctStart, threePhase);
  let start = 0.0;
  let earlierMax = -Infinity; // steps <= this picked an earlier phase
  for (let i = 0; i < phases.length; i++) {
    const end = phases[i].endStep;
    const last = i === phases.length - 1;
    // Steps that pick phase i: not picked before, and t <= end (any t for the last).
    const lo = i === 0 ? 0 : Math.max(0, Math.floor(earlierMax) + 1);
    const hi = last ? total : Math.min(total, Math.floor(end));
    if (end - start === 0 && lo <= hi) return lo;
    earlierMax = Math.max(earlierMax, end);
    start = end;
  }
  return null;
}

