/** SequentialLR and ChainedScheduler: they drive other schedulers on one optimizer. */
import { TorchScheduler } from "./base";
import type { SimOptimizer } from "./optimizer";
import { PyError, bisectRight } from "../core/pymath";

function noEpochArgument(name: string): PyError {
  return new PyError("TypeError", `${name}.step() takes 1 positional argument but 2 were given`);
}

/** SequentialLR.recursive_undo: step every leaf scheduler back by one epoch. */
function recursiveUndo(s: TorchScheduler): void {
  if (s.children) {
    for (const c of s.children) recursiveUndo(c);
  } else if (s.hasLastEpoch) {
    s.lastEpoch -= 1;
  }
}

export class SequentialLR extends TorchScheduler {
  constructor(
    opt: SimOptimizer,
    path: string,
    readonly schedulers: TorchScheduler[],
    readonly milestones: readonly number[],
  ) {
    super(opt, path);
    this.children = schedulers;
    this.lastEpoch = this.startEpoch + 1;
    for (const g of opt.groups) {
      if (g.initial_lr === undefined) throw new PyError("KeyError", "initial_lr");
      g.lr = g.f32 ? Math.fround(g.initial_lr) : g.initial_lr;
    }
    recursiveUndo(this);
    const idx = bisectRight(milestones, 0);
    schedulers[idx].initialStep();
  }

  override step(epoch?: number): void {
    if (epoch !== undefined) throw noEpochArgument("SequentialLR");
    this.lastEpoch += 1;
    const idx = bisectRight(this.milestones, this.lastEpoch);
    const scheduler = this.schedulers[idx];
    if (idx > 0 && this.milestones[idx - 1] === this.lastEpoch) {
      scheduler.updateLr(0);
    } else {
      scheduler.step();
    }
  }
}

export class ChainedScheduler extends TorchScheduler {
  constructor(
    opt: SimOptimizer,
    path: string,
    readonly schedulers: TorchScheduler[],
  ) {
    super(opt, path);
    this.children = schedulers;
    this.hasLastEpoch = false; // no super().__init__: no last_epoch, no initial step
  }

  override step(epoch?: number): void {
    if (epoch !== undefined) throw noEpochArgument("ChainedScheduler");
    for (const s of this.schedulers) s.step();
  }
}
