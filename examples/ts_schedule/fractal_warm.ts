/**
 * A schedule module: a linear warmup, then REX decay whose rate is re-read
 * every `every` steps, with momentum falling while the lr rises (1cycle-like).
 * Built only from library pieces, so a server computes it exactly as the
 * equivalent JSON spec (train.py prints both side by side).
 */
import { join, linear, rex, sample, warmup } from "lrbridge/schedules";

export interface Params {
  /** steps in the run */
  total: number;
  /** warmup steps */
  warm: number;
  /** the decay's sampling period in steps */
  every: number;
}

export default (p: Params) => ({
  lr: join([warmup.linear(p.warm), sample(rex(p.total - p.warm), { every: p.every })], [p.warm]),
  momentum: join([linear(p.warm, { start: 0.95, end: 0.85 }), linear(p.total - p.warm, { start: 0.85, end: 0.95 })], [p.warm]),
});
