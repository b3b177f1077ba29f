import { rex } from "lrbridge/schedules";

/** Custom arithmetic: computed inside the sandbox. */
export default (p: { total: number; warm: number }) => {
  const decay = rex(p.total - p.warm);
  return (t: number) => (t < p.warm ? (t + 1) / p.warm : decay(t - p.warm) * (1 + 0.1 * Math.sin(t / 50)) / 1.1);
};
