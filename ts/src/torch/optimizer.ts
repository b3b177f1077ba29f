/**
 * The part of a torch Optimizer that schedulers touch: param_group dicts and
 * whether the optimizer's defaults carry `momentum` (SGD, RMSprop) or
 * `betas` (Adam family). Schedulers read and write these keys exactly as
 * torch does, so composites see each other's side effects.
 */
import { RESUMED_KEYS } from "../core/api";
import { PyError } from "../core/pymath";

export interface SimGroup {
  lr: number;
  /**
   * group["lr"] is a float32 tensor: torch computes on it in float32 (each
   * operation rounded, Python scalars cast to float32 first) and fill_
   * rounds what it writes. A float64 tensor computes exactly like a float.
   */
  f32?: boolean;
  initial_lr?: number;
  momentum?: number;
  betas?: [number, number];
  max_lr?: number;
  min_lr?: number;
  max_momentum?: number;
  base_momentum?: number;
}

export type GroupKey = "initial_lr" | "max_lr" | "min_lr" | "max_momentum" | "base_momentum";

export interface SimOptimizer {
  groups: SimGroup[];
  /** The `last_epoch` the next scheduler constructed on it receives (read once, then -1). */
  constructLastEpoch?: number;
  /** "momentum" in optimizer.defaults */
  hasMomentum: boolean;
  /** "betas" in optimizer.defaults */
  hasBetas: boolean;
}

export interface GroupSeed {
  /** group["lr"] as it is when the scheduler is constructed. */
  lr: number;
  /** group["initial_lr"] when set (a resumed optimizer, or an earlier scheduler). */
  initial_lr?: number | null;
  /** group["lr"] is a tensor of this dtype (absent: a Python float). */
  lr_dtype?: "float32" | "float64" | null;
  momentum?: number | null;
  betas?: readonly [number, number] | null;
  /** What an earlier OneCycleLR wrote (a resumed optimizer's state). */
  max_lr?: number | null;
  min_lr?: number | null;
  max_momentum?: number | null;
  base_momentum?: number | null;
}

/** The optimizer as the scheduler's constructor finds it. */
export function makeOptimizer(seeds: readonly GroupSeed[]): SimOptimizer {
  const groups = seeds.map((s): SimGroup => {
    const f32 = s.lr_dtype === "float32";
    const g: SimGroup = { lr: f32 ? Math.fround(s.lr) : s.lr };
    if (f32) g.f32 = true;
    if (s.initial_lr !== undefined && s.initial_lr !== null) g.initial_lr = f32 ? Math.fround(s.initial_lr) : s.initial_lr;
    if (s.momentum !== undefined && s.momentum !== null) g.momentum = s.momentum;
    if (s.betas !== undefined && s.betas !== null) g.betas = [s.betas[0], s.betas[1]];
    for (const key of RESUMED_KEYS) {
      const v = s[key];
      if (v !== undefined && v !== null) g[key] = v;
    }
    return g;
  });
  return {
    groups,
    hasMomentum: seeds.some((s) => s.momentum !== undefined && s.momentum !== null),
    hasBetas: seeds.some((s) => s.betas !== undefined && s.betas !== null),
  };
}

/** group[key], raising KeyError as torch does when a key was never set. */
export function groupValue(group: SimGroup, key: GroupKey | "lr"): number {
  const v = group[key];
  if (v === undefined) throw new PyError("KeyError", key);
  return v;
}

/** Writes momentum the way CyclicLR/OneCycleLR do: betas[0] or momentum. */
export function writeMomentum(group: SimGroup, useBeta1: boolean, value: number): void {
  if (useBeta1) {
    const betas = group.betas;
    if (betas === undefined) throw new PyError("KeyError", "betas");
    group.betas = [value, betas[1]];
  } else {
    group.momentum = value;
  }
}

/** The momentum a row reports: betas[0] for Adam-family, else momentum. */
export function readMomentum(group: SimGroup, useBeta1: boolean): number {
  const v = useBeta1 ? group.betas?.[0] : group.momentum;
  return v === undefined ? NaN : v;
}

/** torch's tensor arithmetic on a float32 lr: both operands float32, result rounded. */
export const f32 = Math.fround;
