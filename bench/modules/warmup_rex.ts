/** The README's example: a linear warmup joined to REX, built only from library pieces. */
import { join, warmup, rex } from "lrbridge/schedules";

export default (p: { total: number; warm: number }) => join([warmup.linear(p.warm), rex(p.total - p.warm)], [p.warm]);
