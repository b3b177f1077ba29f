/** Built only from library pieces: served as the JSON spec it describes (bench/modules.ts has it as JSON too). */
import { join, warmup, rex, cycles, multiply, sample } from "lrbridge/schedules";

export default (p: { total: number; warm: number }) =>
  join([warmup.linear(p.warm), multiply([rex(p.total - p.warm), sample(cycles(p.total / 8, { shape: "cosine", cycleDecay: 0.8 }), { every: 10 })])], [p.warm]);

