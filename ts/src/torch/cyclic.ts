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

/**
 * getLr's one row: both classes compute it with the code fillRows runs,
 * then it goes to the groups (momentums here, lrs through updateLr).
 */
class StepRow {
  lr = new Float64Array(0);
  momentum: Float64Array | null = null;

  sized(n: number, withMomentum: boolean): this {
    if (this.lr.length !== n) this.lr = new Float64Array(n);
    if (!withMomentum) this.momentum = null;
    else if (this.momentum === null || this.momentum.length !== n) this.momentum = new Float64Array(n);
    return this;
  }

  /** Writes the momentums into the groups; returns the lrs in `out`. */
  apply(out: number[], opt: SimOptimizer, useBeta1: boolean): number[] {
    const { lr, momentum } = this;
    for (let i = 0; i < lr.length; i++) out[i] = lr[i];
    if (momentum) for (let i = 0; i < momentum.length; i++) writeMomentum(opt.groups[i], useBeta1, momentum[i]);
    return out;
  }
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

  private readonly row = new StepRow();

  /** torch's get_lr: the one row fillRows computes for this step. */
  override getLr(): number[] {
    const { lr, momentum } = this.row.sized(this.optimizer.groups.length, this.o.cycleMomentum);
    try {
      this.fillRows(this.lastEpoch, 1, lr, momentum);
    } catch (err) {
      throw err instanceof StepFailure ? err.error : err;
    }
    return this.row.apply(this.lrOut(), this.optimizer, this.useBeta1);
  }

  /** torch's get_lr, step by step: each step's lrs (and momentums) for every group, row-major. */
  fillRows(first: number, count: number, lr: Float64Array, momentum: Float64Array | null): void {
    const { baseLrs, maxLrs, totalSize, stepRatio, scale } = this;
    const { baseMomentums, maxMomentums } = this.o;
    const byCycle = this.scaleMode === "cycle";
    const n = baseLrs.length;
    let t = first;
    try {
      for (let k = 0; k < count; k++, t++) {
        const cycle = pyFloor(1 + pyDiv(t, totalSize));
        const x = 1.0 + pyDiv(t, totalSize) - cycle;
        const scaleFactor = x <= stepRatio ? pyDiv(x, stepRatio) : pyDiv(x - 1, stepRatio - 1);
        const s = scale(byCycle ? cycle : t);
        const at = k * n;
        // base_lr + (max_lr - base_lr) * scale_factor * scale_fn(...)
        for (let i = 0; i < n; i++) lr[at + i] = baseLrs[i] + (maxLrs[i] - baseLrs[i]) * scaleFactor * s;
        if (momentum) {
          // max_momentum - base_height * scale_fn(...), base_height = (max_momentum - base_momentum) * scale_factor
          for (let i = 0; i < n; i++) momentum[at + i] = maxMomentums[i] - (maxMomentums[i] - baseMomentums[i]) * scaleFactor * s;
        }
      }
    } catch (err) {
      throw new StepFailure(t, err);
    }
  }
}

/** One phase's start and end values, per group. */
interface PhaseEnds {
  lrStart: number[];
  lrEnd: number[];
  mStart: number[];
  mEnd: number[];
}

const newEnds = (): PhaseEnds => ({ lrStart: [], lrEnd: [], mStart: [], mEnd: [] });

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

/** torch's _annealing_cos, split so lr and momentum can share one cos (the value torch computes twice). */
function cosOutOf(pct: number): number {
  return Math.cos(Math.PI * pct) + 1;
}
function annealCosWith(start: number, end: number, cosOut: number): number {
  return end + ((start - end) / 2.0) * cosOut;
}

function annealLinear(start: number, end: number, pct: number): number {
  return (end - start) * pct + start;
}

export class OneCycleLR extends TorchScheduler {
  readonly phases: Phase[];
  readonly useBeta1: boolean = false;
  /** anneal_strategy "cos" (else "linear"). */
  private readonly cos: boolean;

  constructor(
    opt: SimOptimizer,
    path: string,
    readonly o: OneCycleOptions,
  ) {
    super(opt, path);
    this.phases = oneCyclePhases(o.totalSteps, o.pctStart, o.threePhase);
    this.cos = o.annealStrategy === "cos";
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

  /** Phase p's start and end values, group by group, as the groups hold them now (into `e`). */
  private readEnds(p: number, withMomentum: boolean, e: PhaseEnds = newEnds()): PhaseEnds {
    const phase = this.phases[p];
    const groups = this.optimizer.groups;
    e.lrStart.length = e.lrEnd.length = e.mStart.length = e.mEnd.length = 0;
    // get_lr's order of reads, so a missing key raises the same KeyError.
    for (const g of groups) {
      e.lrStart.push(groupValue(g, phase.startLr));
      e.lrEnd.push(groupValue(g, phase.endLr));
      if (withMomentum) {
        e.mStart.push(groupValue(g, phase.startMomentum));
        e.mEnd.push(groupValue(g, phase.endMomentum));
      }
    }
    return e;
  }

  /**
   * torch's get_lr at step t: every group's lr into lr[at..], and its
   * momentum into momentum[at..] when given, annealed between the ends of
   * t's phase (`ends[p]`, or the groups' keys when null). getLr and fillRows
   * both call it.
   */
  private writeStep(t: number, ends: PhaseEnds[] | null, lr: Float64Array, momentum: Float64Array | null, at: number): void {
    this.checkStep(t);
    const p = this.phaseIndex(t);
    const pct = this.phasePct(p, t);
    const { lrStart, lrEnd, mStart, mEnd } = ends ? ends[p] : this.readEnds(p, momentum !== null, this.liveEnds);
    const n = lrStart.length;
    if (this.cos) {
      const cosOut = cosOutOf(pct);
      for (let i = 0; i < n; i++) lr[at + i] = annealCosWith(lrStart[i], lrEnd[i], cosOut);
      if (momentum) for (let i = 0; i < n; i++) momentum[at + i] = annealCosWith(mStart[i], mEnd[i], cosOut);
    } else {
      for (let i = 0; i < n; i++) lr[at + i] = annealLinear(lrStart[i], lrEnd[i], pct);
      if (momentum) for (let i = 0; i < n; i++) momentum[at + i] = annealLinear(mStart[i], mEnd[i], pct);
    }
  }

  private readonly row = new StepRow();
  /** getLr's ends, read afresh every step. */
  private readonly liveEnds = newEnds();

  override getLr(): number[] {
    const { lr, momentum } = this.row.sized(this.optimizer.groups.length, this.o.cycleMomentum);
    this.writeStep(this.lastEpoch, null, lr, momentum, 0);
    return this.row.apply(this.lrOut(), this.optimizer, this.useBeta1);
  }

  /**
   * The group keys getLr reads never change while OneCycleLR drives the
   * optimizer alone: read them once per phase, then anneal per row.
   */
  fillRows(first: number, count: number, lr: Float64Array, momentum: Float64Array | null): void {
    const n = this.optimizer.groups.length;
    const ends = this.phases.map((_, p) => this.readEnds(p, momentum !== null));
    let t = first;
    try {
      for (let k = 0; k < count; k++, t++) this.writeStep(t, ends, lr, momentum, k * n);
    } catch (err) {
      throw new StepFailure(t, err);
    }
  }
}
