/**
 * The schedulers whose get_lr() is recursive (reads the current group lr),
 * plus LambdaLR. Every expression keeps torch's operation order so rounding
 * matches bit for bit where the math library does.
 */
import { StepFailure, TorchScheduler } from "./base";
import { type SimOptimizer, f32 } from "./optimizer";
import { bisectRight, pyDiv, pyFloorDiv, pyModIsZero, pyPow } from "../core/pymath";

/** A Python callable of the epoch (lr_lambda). */
export type EpochFn = (epoch: number) => number;

/** Python's min(a, b): the first argument unless the second is smaller. */
function pyMin(a: number, b: number): number {
  return b < a ? b : a;
}

export class StepLR extends TorchScheduler {
  constructor(
    opt: SimOptimizer,
    path: string,
    readonly stepSize: number,
    readonly gamma: number,
  ) {
    super(opt, path);
    this.init();
  }
  override getLr(): number[] {
    if (this.lastEpoch === 0 || !pyModIsZero(this.lastEpoch, this.stepSize)) return this.currentLrs();
    return this.currentLrsTimes(this.gamma);
  }
  override closedFormLr(): number[] {
    const k = pyFloorDiv(this.lastEpoch, this.stepSize);
    return this.baseLrsTimes(pyPow(this.gamma, k));
  }
}

export class MultiStepLR extends TorchScheduler {
  /** collections.Counter(milestones) */
  private readonly counts = new Map<number, number>();
  private readonly sortedMilestones: number[];
  constructor(
    opt: SimOptimizer,
    path: string,
    milestones: readonly number[],
    readonly gamma: number,
  ) {
    super(opt, path);
    for (const m of milestones) this.counts.set(m, (this.counts.get(m) ?? 0) + 1);
    this.sortedMilestones = [...milestones].sort((a, b) => a - b);
    this.init();
  }
  override getLr(): number[] {
    const n = this.counts.get(this.lastEpoch);
    if (n === undefined) return this.currentLrs();
    return this.currentLrsTimes(pyPow(this.gamma, n));
  }
  override closedFormLr(): number[] {
    const k = bisectRight(this.sortedMilestones, this.lastEpoch);
    return this.baseLrsTimes(pyPow(this.gamma, k));
  }
}

export class ConstantLR extends TorchScheduler {
  constructor(
    opt: SimOptimizer,
    path: string,
    readonly factor: number,
    readonly totalIters: number,
  ) {
    super(opt, path);
    this.init();
  }
  override getLr(): number[] {
    if (this.lastEpoch === 0) return this.currentLrsTimes(this.factor);
    if (this.lastEpoch !== this.totalIters) return this.currentLrs();
    return this.currentLrsTimes(pyDiv(1.0, this.factor));
  }
  override closedFormLr(): number[] {
    // (last_epoch >= total_iters) * (1 - factor): a bool times a float.
    const reached = this.lastEpoch >= this.totalIters ? 1 : 0;
    return this.baseLrsTimes(this.factor + reached * (1 - this.factor));
  }
}

export class LinearLR extends TorchScheduler {
  constructor(
    opt: SimOptimizer,
    path: string,
    readonly startFactor: number,
    readonly endFactor: number,
    readonly totalIters: number,
  ) {
    super(opt, path);
    this.init();
  }
  override getLr(): number[] {
    if (this.lastEpoch === 0) return this.currentLrsTimes(this.startFactor);
    if (this.isInitial || this.lastEpoch > this.totalIters) return this.currentLrs();
    const sf = this.startFactor;
    const ef = this.endFactor;
    const ratio =
      1.0 + pyDiv(ef - sf, this.totalIters * sf + (this.lastEpoch - 1) * (ef - sf));
    return this.currentLrsTimes(ratio);
  }
  override closedFormLr(): number[] {
    const sf = this.startFactor;
    const ef = this.endFactor;
    const t = pyMin(this.totalIters, this.lastEpoch);
    return this.baseLrsTimes(sf + pyDiv((ef - sf) * t, this.totalIters));
  }
}

export class ExponentialLR extends TorchScheduler {
  constructor(
    opt: SimOptimizer,
    path: string,
    readonly gamma: number,
  ) {
    super(opt, path);
    this.init();
  }
  override getLr(): number[] {
    if (this.isInitial) return this.currentLrs();
    return this.currentLrsTimes(this.gamma);
  }
  override closedFormLr(): number[] {
    return this.baseLrsTimes(pyPow(this.gamma, this.lastEpoch));
  }
}

export class PolynomialLR extends TorchScheduler {
  constructor(
    opt: SimOptimizer,
    path: string,
    readonly totalIters: number,
    readonly power: number,
  ) {
    super(opt, path);
    this.init();
  }
  override getLr(): number[] {
    if (this.isInitial || this.lastEpoch > this.totalIters) return this.currentLrs();
    const t = this.lastEpoch;
    const T = this.totalIters;
    const decay = pyPow(pyDiv(1.0 - pyDiv(t, T), 1.0 - pyDiv(t - 1, T)), this.power);
    return this.currentLrsTimes(decay);
  }
  override closedFormLr(): number[] {
    const T = this.totalIters;
    const f = pyPow(1.0 - pyDiv(pyMin(T, this.lastEpoch), T), this.power);
    return this.baseLrsTimes(f);
  }
}

export class CosineAnnealingLR extends TorchScheduler {
  constructor(
    opt: SimOptimizer,
    path: string,
    readonly tMax: number,
    readonly etaMin: number,
  ) {
    super(opt, path);
    this.init();
  }
  override getLr(): number[] {
    const t = this.lastEpoch;
    const T = this.tMax;
    const eta = this.etaMin;
    if (this.isInitial) return this.currentLrs();
    if (this.stepCount === 1 && t > 0) return this.baseLrsCosine(eta, 1 + Math.cos(pyDiv(t * Math.PI, T)));
    if (pyModIsZero(t - 1 - T, 2 * T)) {
      const bump = 1 - Math.cos(pyDiv(Math.PI, T));
      const groups = this.optimizer.groups;
      const out = this.lrOut();
      for (let i = 0; i < groups.length; i++) {
        const g = groups[i];
        if (g.f32) {
          const half = f32(f32(f32(this.baseLrs[i] - f32(eta)) * f32(bump)) / 2);
          out[i] = f32(g.lr + half);
        } else {
          out[i] = g.lr + ((this.baseLrs[i] - eta) * bump) / 2;
        }
      }
      return out;
    }
    const ratio = pyDiv(this.onePlusCos(t), this.onePlusCos(t - 1));
    const groups = this.optimizer.groups;
    const out = this.lrOut();
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i];
      out[i] = g.f32 ? f32(f32(f32(ratio) * f32(g.lr - f32(eta))) + f32(eta)) : ratio * (g.lr - eta) + eta;
    }
    return out;
  }

  // Each step's denominator is the previous step's numerator: the same
  // expression on the same t, so reusing it changes no bit and halves the cos calls.
  private cosT = NaN;
  private cosValue = 0;
  private onePlusCos(t: number): number {
    if (t !== this.cosT) {
      this.cosValue = 1 + Math.cos(pyDiv(Math.PI * t, this.tMax));
      this.cosT = t;
    }
    return this.cosValue;
  }
  override closedFormLr(): number[] {
    return this.baseLrsCosine(this.etaMin, 1 + Math.cos(pyDiv(Math.PI * this.lastEpoch, this.tMax)));
  }
}

/** LambdaLR and MultiplicativeLR: one function of the epoch per group, multiplying an lr. */
abstract class PerGroupLambda extends TorchScheduler {
  constructor(
    opt: SimOptimizer,
    path: string,
    readonly lambdas: readonly EpochFn[],
  ) {
    super(opt, path);
    this.init();
  }

  /** lrs[i] * lr_lambda_i(last_epoch) for every group (lrs may be lrOut() itself). */
  protected timesLambdas(lrs: readonly number[]): number[] {
    const out = this.lrOut();
    const groups = this.optimizer.groups;
    for (let i = 0; i < out.length; i++) {
      const v = this.lambdas[i](this.lastEpoch);
      out[i] = groups[i].f32 ? f32(lrs[i] * f32(v)) : lrs[i] * v;
    }
    return out;
  }
}

export class LambdaLR extends PerGroupLambda {
  override getLr(): number[] {
    return this.timesLambdas(this.baseLrs);
  }

  /** Row t is base_lr * lr_lambda(t): no state but the step count. */
  fillRows(first: number, count: number, lr: Float64Array): void {
    const n = this.baseLrs.length;
    const { baseLrs, lambdas } = this;
    let t = first;
    try {
      for (let k = 0; k < count; k++, t++) {
        // Groups sharing one lr_lambda share its value: a pure function of t.
        let factor = lambdas[0](t);
        lr[k * n] = baseLrs[0] * factor;
        for (let i = 1; i < n; i++) {
          if (lambdas[i] !== lambdas[i - 1]) factor = lambdas[i](t);
          lr[k * n + i] = baseLrs[i] * factor;
        }
      }
    } catch (err) {
      throw new StepFailure(t, err);
    }
  }
}

export class MultiplicativeLR extends PerGroupLambda {
  override getLr(): number[] {
    if (this.isInitial) return this.currentLrs();
    return this.timesLambdas(this.currentLrs());
  }
}
