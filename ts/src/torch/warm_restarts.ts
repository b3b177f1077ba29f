/** CosineAnnealingWarmRestarts: overrides step(), fractional epochs allowed. */
import { TorchScheduler, writeLrs } from "./base";
import type { SimOptimizer } from "./optimizer";
import { PyError, pyDiv, pyFloatRepr, pyLog, pyMod, pyPow } from "../core/pymath";

export class CosineAnnealingWarmRestarts extends TorchScheduler {
  tI: number;
  tCur: number;

  constructor(
    opt: SimOptimizer,
    path: string,
    readonly t0: number,
    readonly tMult: number,
    readonly etaMin: number,
  ) {
    super(opt, path);
    this.tI = t0;
    this.tCur = this.startEpoch; // T_cur = last_epoch
    this.init();
  }

  /** A user's `scheduler.T_cur = …` (a manual restart) or `T_i = …`: step() continues from it. */
  override setAttr(name: string, value: number): void {
    if (name === "T_cur") this.tCur = value;
    else if (name === "T_i") this.tI = value;
    else super.setAttr(name, value);
  }

  override getLr(): number[] {
    return this.baseLrsCosine(this.etaMin, 1 + Math.cos(pyDiv(Math.PI * this.tCur, this.tI)));
  }

  /** torch's own step(): no _step_count, and the epoch form recomputes T_cur/T_i. */
  override step(epochArg?: number): void {
    let epoch = epochArg;
    if (epoch === undefined && this.lastEpoch < 0) epoch = 0;
    if (epoch === undefined) {
      epoch = this.lastEpoch + 1;
      this.tCur = this.tCur + 1;
      if (this.tCur >= this.tI) {
        this.tCur = pyMod(this.tCur, this.tI);
        this.tI = this.tI * this.tMult;
      }
    } else {
      if (epoch < 0) throw new PyError("ValueError", `Expected non-negative epoch, but got ${pyFloatRepr(epoch)}`);
      if (epoch >= this.t0) {
        if (this.tMult === 1) {
          this.tCur = pyMod(epoch, this.t0);
        } else {
          const n = Math.trunc(pyLog((epoch / this.t0) * (this.tMult - 1) + 1, this.tMult));
          this.tCur = epoch - pyDiv(this.t0 * (pyPow(this.tMult, n) - 1), this.tMult - 1);
          this.tI = this.t0 * pyPow(this.tMult, n);
        }
      } else {
        this.tI = this.t0;
        this.tCur = epoch;
      }
    }
    this.lastEpoch = Math.floor(epoch);
    writeLrs(this.optimizer.groups, this.getLr());
    this.keepLastLr();
  }
}
