/** CyclicLR and OneCycleLR: closed forms over group keys, writing momentum too. */
import { StepFailure, TorchScheduler, writeLrs } from "./base";
import { groupValue, type GroupKey, type SimOptimizer, writeMomentum } from "./optimizer";
import { PyError, pyDiv, pyFloor, pyPow } from "../core/pymath";

/** The optimizer check both classes make when cycle_momentum is on. */
function requireMomentum(opt: SimOptimizer): boolean {
  if (!opt.hasMomentum && !opt.hasBetas) {
    throw new PyError(
      "ValueError",
      "optimizer must support momentum or beta1 with `cycle_momentum` option enabled",
    );
  }
  return opt.hasBetas; // use_beta1 = "betas" in optimizer.defaults
}

/** Sets momentum/betas[0] to max_momentum and records the bounds in the groups. */
function seedMomentum(
  opt: SimOptimizer,
  useBeta1: boolean,
  maxMomentums: readonly number[],
  baseMomentums: readonly number[],
): void {
  opt.groups.forEach((g, i) => {
    writeMomentum(g, useBeta1, maxMomentums[i]);
    g.max_momentum = maxMomentums[i];
    g.base_momentum = baseMomentums[i];
  });
}

export type CyclicMode = "triangular" | "triangular2" | "exp_range";

export interface CyclicOptions {
  baseLrs: number[];
  maxLrs: number[];
  stepSizeUp: number;
  stepSizeDown: number | null;
  mode: string;
  gamma: number;
  /** A custom scale_fn(x); replaces the mode's. */
  scaleFn: ((x: number) => number) | null;
  scaleMode: string;
  cycleMomentum: boolean;
  baseMomentums: number[];
  maxMomentums: number[];
}

export class CyclicLR extends TorchScheduler {
  readonly maxLrs: number[];
  readonly totalSize: number;
  readonly stepRatio: number;
  readonly scaleMode: string;
  readonly useBeta1: boolean = false;
  private readonly scale: (x: number) => number;

  constructor(
    opt: SimOptimizer,
    path: string,
    readonly o: CyclicOptions,
  ) {
    super(opt, path);
    // last_epoch == -1: the group lr starts at base_lr (fill_ on a tensor).
    if (this.startEpoch === -1) writeLrs(opt.groups, o.baseLrs);
    this.maxLrs = o.maxLrs;
    const up = o.stepSizeUp;
    const down = o.stepSizeDown ?? up;
    this.totalSize = up + down;
    this.stepRatio = pyDiv(up, this.totalSize);
    if (!["triangular", "triangular2", "exp_range"].includes(o.mode) && o.scaleFn === null) {
      throw new PyError("ValueError", "mode is invalid and scale_fn is None");
    }
    let scaleMode = o.scaleMode;
    if (o.scaleFn !== null) {
      this.scale = o.scaleFn;
    } else if (o.mode === "triangular") {
      this.scale = () => 1.0;
      scaleMode = "cycle";
    } else if (o.mode === "triangular2") {
      this.scale = (x) => pyDiv(1, pyPow(2.0, x - 1));
      scaleMode = "cycle";
    } else {
      const gamma = o.gamma;
      this.scale = (x) => pyPow(gamma, x);
      scaleMode = "iterations";
    }
    this.scaleMode = scaleMode;
    if (o.cycleMomentum) {
      this.useBeta1 = requireMomentum(opt);
      if (this.startEpoch === -1) seedMomentum(opt, this.useBeta1, o.maxMomentums, o.baseMomentums);
    }
    this.init();
    // torch assigns base_lrs after super().__init__: the initial step used initial_lr.
    this.baseLrs = o.baseLrs;
  }

  /** getLr's per-step factors, the same for every group (set by stepFactors). */
  private scaleFactor = 0;
  private scaleValue = 0;

  private stepFactors(t: number): void {
    const cycle = pyFloor(1 + pyDiv(t, this.totalSize));
    const x = 1.0 + pyDiv(t, this.totalSize) - cycle;
    this.scaleFactor =
      x <= this.stepRatio ? pyDiv(x, this.stepRatio) : pyDiv(x - 1, this.stepRatio - 1);
    this.scaleValue = this.scale(this.scaleMode === "cycle" ? cycle : t);
  }

  override getLr(): number[] {
    this.stepFactors(this.lastEpoch);
    const scaleFactor = this.scaleFactor;
    const s = this.scaleValue;
    const out = this.lrOut();
    for (let i = 0; i < out.length; i++) out[i] = cyclicValue(this.baseLrs[i], this.maxLrs[i], scaleFactor, s);
    if (this.o.cycleMomentum) {
      const groups = this.optimizer.groups;
      for (let i = 0; i < groups.length; i++) {
        const m = cyclicMomentum(this.o.baseMomentums[i], this.o.maxMomentums[i], scaleFactor, s);
        writeMomentum(groups[i], this.useBeta1, m);
      }
    }
    return out;
  }

  fillRows(first: number, count: number, lr: Float64Array, momentum: Float64Array | null): void {
    const n = this.optimizer.groups.length;
    const { baseLrs, maxLrs } = this;
    const { baseMomentums, maxMomentums } = this.o;
    let t = first;
    try {
      for (let k = 0; k < count; k++, t++) {
        this.stepFactors(t);
        const scaleFactor = this.scaleFactor;
        const s = this.scaleValue;
        const at = k * n;
        for (let i = 0; i < n; i++) lr[at + i] = cyclicValue(baseLrs[i], maxLrs[i], scaleFactor, s);
        if (momentum) {
          for (let i = 0; i < n; i++) momentum[at + i] = cyclicMomentum(baseMomentums[i], maxMomentums[i], scaleFactor, s);
        }
      }
    } catch (err) {
      throw new StepFailure(t, err);
    }
  }
}

/** torch: base_lr + (max_lr - base_lr) * scale_factor * scale_fn(...). */
function cyclicValue(base: number, max: number, scaleFactor: number, s: number): number {
  return base + (max - base) * scaleFactor * s;
}

/** torch: max_momentum - (max_momentum - base_momentum) * scale_factor * scale_fn(...). */
function cyclicMomentum(baseM: number, maxM: number, scaleFactor: number, s: number): number {
  const height = (maxM - baseM) * scaleFactor;
  return maxM - height * s;
}

interface Phase {
  endStep: number;
  startLr: GroupKey;
  endLr: GroupKey;
  startMomentum: GroupKey;
  endMomentum: GroupKey;
}

export interface OneCycleOptions {
  maxLrs: number[];
  totalSteps: number;
  pctStart: number;
  annealStrategy: "cos" | "linear";
  cycleMomentum: boolean;
  baseMomentums: number[];
  maxMomentums: number[];
  divFactor: number;
  finalDivFactor: number;
  threePhase: boolean;
}

/** OneCycleLR's phase boundaries (float end steps), as torch lays them out. */
export function oneCyclePhases(totalSteps: number, pctStart: number, threePhase: boolean): Phase[] {
  const first: Phase = {
    endStep: pctStart * totalSteps - 1,
    startLr: "initial_lr",
    endLr: "max_lr",
    startMomentum: "max_momentum",
    endMomentum: "base_momentum",
  };
  if (threePhase) {
    return [
      first,
      {
        endStep: 2 * pctStart * totalSteps - 2,
        startLr: "max_lr",
        endLr: "initial_lr",
        startMomentum: "base_momentum",
        endMomentum: "max_momentum",
      },
      {
        endStep: totalSteps - 1,
        startLr: "initial_lr",
        endLr: "min_lr",
        startMomentum: "max_momentum",
        endMomentum: "max_momentum",
      },
    ];
  }
  return [
    first,
    {
      endStep: totalSteps - 1,
      startLr: "max_lr",
      endLr: "min_lr",
      startMomentum: "base_momentum",
      endMomentum: "max_momentum",
    },
  ];
}

/** torch's _annealing_cos, split so lr and momentum can share one cos. */
function cosOutOf(pct: number): number {
  return Math.cos(Math.PI * pct) + 1;
}
function annealCosWith(start: number, end: number, cosOut: number): number {
  return end + ((start - end) / 2.0) * cosOut;
}
function annealCos(start: number, end: number, pct: number): number {
  return annealCosWith(start, end, cosOutOf(pct));
}

function annealLinear(start: number, end: number, pct: number): number {
  return (end - start) * pct + start;
}

export class OneCycleLR extends TorchScheduler {
  readonly phases: Phase[];
  readonly useBeta1: boolean = false;
  private readonly anneal: (start: number, end: number, pct: number) => number;

  constructor(
    opt: SimOptimizer,
    path: string,
    readonly o: OneCycleOptions,
  ) {
    super(opt, path);
    this.phases = oneCyclePhases(o.totalSteps, o.pctStart, o.threePhase);
    this.anneal = o.annealStrategy === "cos" ? annealCos : annealLinear;
    if (this.startEpoch === -1) {
      opt.groups.forEach((g, i) => {
        g.initial_lr = pyDiv(o.maxLrs[i], o.divFactor);
        g.max_lr = o.maxLrs[i];
        g.min_lr = pyDiv(g.initial_lr, o.finalDivFactor);
      });
    }
    if (o.cycleMomentum) {
      this.useBeta1 = requireMomentum(opt);
      if (this.startEpoch === -1) seedMomentum(opt, this.useBeta1, o.maxMomentums, o.baseMomentums);
    }
    this.init();
  }

  /** get_lr's refusal past total_steps. */
  private checkStep(stepNum: number): void {
    if (stepNum > this.o.totalSteps) {
      throw new PyError(
        "ValueError",
        `Tried to step ${stepNum} times. The specified number of total steps is ${this.o.totalSteps}`,
      );
    }
  }

  /** The phase get_lr's loop picks for `stepNum` (the same for every group). */
  private phaseIndex(stepNum: number): number {
    const last = this.phases.length - 1;
    for (let i = 0; i < last; i++) if (stepNum <= this.phases[i].endStep) return i;
    return last;
  }

  /** How far along phase `i` step `stepNum` is: (step_num - start_step) / (end_step - start_step). */
  private phasePct(i: number, stepNum: number): number {
    const startStep = i === 0 ? 0.0 : this.phases[i - 1].endStep;
    return pyDiv(stepNum - startStep, this.phases[i].endStep - startStep);
  }

  override getLr(): number[] {
    const stepNum = this.lastEpoch;
    this.checkStep(stepNum);
    const p = this.phaseIndex(stepNum);
    const phase = this.phases[p];
    const pct = this.phasePct(p, stepNum);
    const groups = this.optimizer.groups;
    const out = this.lrOut();
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i];
      out[i] = this.anneal(groupValue(g, phase.startLr), groupValue(g, phase.endLr), pct);
      if (this.o.cycleMomentum) {
        const m = this.anneal(groupValue(g, phase.startMomentum), groupValue(g, phase.endMomentum), pct);
        writeMomentum(g, this.useBeta1, m);
      }
    }
    return out;
  }

  /**
   * The group keys getLr reads never change while OneCycleLR drives the
   * optimizer alone: read them once per phase, then anneal per row.
   */
  fillRows(first: number, count: number, lr: Float64Array, momentum: Float64Array | null): void {
    const groups = this.optimizer.groups;
    const n = groups.length;
    const ends = (key: (p: Phase) => GroupKey, on: boolean) =>
      this.phases.map((p) => (on ? groups.map((g) => groupValue(g, key(p))) : []));
    const lrStart = ends((p) => p.startLr, true);
    const lrEnd = ends((p) => p.endLr, true);
    const mStart = ends((p) => p.startMomentum, momentum !== null);
    const mEnd = ends((p) => p.endMomentum, momentum !== null);
    const cos = this.anneal === annealCos;
    let t = first;
    try {
      for (let k = 0; k < count; k++, t++) {
        this.checkStep(t);
        const p = this.phaseIndex(t);
        const pct = this.phasePct(p, t);
        const at = k * n;
        if (cos) {
          const cosOut = cosOutOf(pct);
          for (let i = 0; i < n; i++) lr[at + i] = annealCosWith(lrStart[p][i], lrEnd[p][i], cosOut);
          if (momentum) for (let i = 0; i < n; i++) momentum[at + i] = annealCosWith(mStart[p][i], mEnd[p][i], cosOut);
        } else {
          for (let i = 0; i < n; i++) lr[at + i] = annealLinear(lrStart[p][i], lrEnd[p][i], pct);
          if (momentum) for (let i = 0; i < n; i++) momentum[at + i] = annealLinear(mStart[p][i], mEnd[p][i], pct);
        }
      }
    } catch (err) {
      throw new StepFailure(t, err);
    }
  }
}
