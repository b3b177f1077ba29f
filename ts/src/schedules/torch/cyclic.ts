/** CyclicLR and OneCycleLR: closed forms over group keys, writing momentum too. */
import { TorchScheduler } from "./base";
import { groupValue, type GroupKey, type SimOptimizer, writeMomentum } from "./optimizer";
import { PyError, pyDiv, pyFloor, pyPow } from "./pymath";

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
    // last_epoch == -1: the group lr starts at base_lr.
    opt.groups.forEach((g, i) => {
      g.lr = o.baseLrs[i];
    });
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
      seedMomentum(opt, this.useBeta1, o.maxMomentums, o.baseMomentums);
    }
    this.init();
    // torch assigns base_lrs after super().__init__: the initial step used initial_lr.
    this.baseLrs = o.baseLrs;
  }

  override getLr(): number[] {
    const t = this.lastEpoch;
    const cycle = pyFloor(1 + pyDiv(t, this.totalSize));
    const x = 1.0 + pyDiv(t, this.totalSize) - cycle;
    const scaleFactor =
      x <= this.stepRatio ? pyDiv(x, this.stepRatio) : pyDiv(x - 1, this.stepRatio - 1);
    const s = this.scale(this.scaleMode === "cycle" ? cycle : t);
    const lrs = this.baseLrs.map((base, i) => base + (this.maxLrs[i] - base) * scaleFactor * s);
    if (this.o.cycleMomentum) {
      this.optimizer.groups.forEach((g, i) => {
        const maxM = this.o.maxMomentums[i];
        const height = (maxM - this.o.baseMomentums[i]) * scaleFactor;
        writeMomentum(g, this.useBeta1, maxM - height * s);
      });
    }
    return lrs;
  }
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

function annealCos(start: number, end: number, pct: number): number {
  const cosOut = Math.cos(Math.PI * pct) + 1;
  return end + ((start - end) / 2.0) * cosOut;
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
    opt.groups.forEach((g, i) => {
      g.initial_lr = pyDiv(o.maxLrs[i], o.divFactor);
      g.max_lr = o.maxLrs[i];
      g.min_lr = pyDiv(g.initial_lr, o.finalDivFactor);
    });
    if (o.cycleMomentum) {
      this.useBeta1 = requireMomentum(opt);
      seedMomentum(opt, this.useBeta1, o.maxMomentums, o.baseMomentums);
    }
    this.init();
  }

  override getLr(): number[] {
    const stepNum = this.lastEpoch;
    if (stepNum > this.o.totalSteps) {
      throw new PyError(
        "ValueError",
        `Tried to step ${stepNum} times. The specified number of total steps is ${this.o.totalSteps}`,
      );
    }
    const last = this.phases.length - 1;
    return this.optimizer.groups.map((g) => {
      let startStep = 0.0;
      for (let i = 0; i <= last; i++) {
        const phase = this.phases[i];
        const endStep = phase.endStep;
        if (stepNum <= endStep || i === last) {
          const pct = pyDiv(stepNum - startStep, endStep - startStep);
          const lr = this.anneal(groupValue(g, phase.startLr), groupValue(g, phase.endLr), pct);
          if (this.o.cycleMomentum) {
            const m = this.anneal(
              groupValue(g, phase.startMomentum),
              groupValue(g, phase.endMomentum),
              pct,
            );
            writeMomentum(g, this.useBeta1, m);
          }
          return lr;
        }
        startStep = phase.endStep;
      }
      throw new Error("unreachable: the last phase always matches");
    });
  }
}
