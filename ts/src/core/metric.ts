/**
 * A metric-driven schedule as a Bound (ReduceLROnPlateau, greedy, the range
 * test): a pure `(state, metric) → (state, lrs)` whose state the client
 * carries, so any server answers the same request the same way.
 */
import { type Bound, type MetricResult, type MetricState, type Rows, SpecError } from "./api";
import { contentHash } from "./canonical";

export interface MetricSchedule<S> {
  canonical: Record<string, unknown>;
  groups: number;
  /** The state right after construction. */
  initial: () => S;
  /** Checks a client-carried state and rebuilds it from its known fields. */
  read: (state: MetricState) => S;
  step: (state: S, metric: number) => S;
  /** The group lrs a state stands for. */
  lrs: (state: S) => number[];
  /** Rows where the schedule also has them without a metric (the range test's lr ramp). */
  rows?: (start: number, count: number) => Rows;
}

export function metricBound<S>(m: MetricSchedule<S>): Bound {
  const result = (s: S): MetricResult => ({ state: s as unknown as MetricState, lr: m.lrs(s), momentum: null });
  const type = String(m.canonical.type);
  return {
    canonical: m.canonical,
    specHash: contentHash(m.canonical),
    kind: "metric",
    momentumKey: null,
    groups: m.groups,
    chainable: false,
    rowEnd: null,
    rows:
      m.rows ??
      (() => {
        throw new SpecError("", `${type} is metric-driven: use metricStep, not rows`);
      }),
    initialState: () => result(m.initial()),
    metricStep(state: MetricState, metric: number): MetricResult {
      // NaN and infinities are metrics too (torch compares them as floats).
      if (typeof metric !== "number") throw new SpecError("metric", `must be a number, got ${String(metric)}`);
      return result(m.step(m.read(state), metric));
    },
  };
}
