/**
 * A time budget for replays. A torch schedule that has no closed form is
 * simulated step by step up to a window's `start`; a far `start` would hold
 * the server's only thread for hours. Within `withReplayBudget` a replay
 * that runs past its slice keeps the simulation where it got to (the
 * bound's pool) and throws ReplayPending: the same request sent again
 * continues from there. Outside it (tests, tools) replays run to the end.
 */
import { performance } from "node:perf_hooks";

export const REPLAY_LIMITS = {
  /** Milliseconds of replay one request may cost before REPLAY_PENDING. */
  replay_slice_ms: 20,
  /** Furthest `start` a replayed schedule serves (BAD_REQUEST beyond). */
  replay_rows: 4_000_000_000,
} as const;

/** The replay reached `reached` of `target` rows in its slice; ask again to continue. */
export class ReplayPending extends Error {
  constructor(
    readonly reached: number,
    readonly target: number,
  ) {
    super(`replayed to row ${reached} of ${target} within this request's budget: send the same request again to continue`);
    this.name = "ReplayPending";
  }
}

/** A `start` a replay will not go to (REPLAY_LIMITS.replay_rows). */
export class ReplayTooFar extends Error {
  constructor(readonly start: number) {
    super(`start ${start} is over the limit replay_rows = ${REPLAY_LIMITS.replay_rows}: this schedule is replayed step by step`);
    this.name = "ReplayTooFar";
  }
}

let deadline = Infinity;

/** Runs `fn` with replays limited to `ms` milliseconds from now. */
export function withReplayBudget<T>(ms: number, fn: () => T): T {
  const outer = deadline;
  deadline = Math.min(outer, performance.now() + ms);
  try {
    return fn();
  } finally {
    deadline = outer;
  }
}

/** True once the current budget is spent (never outside withReplayBudget). */
export function replayBudgetSpent(): boolean {
  return deadline !== Infinity && performance.now() > deadline;
}

/** Refuses a replay target past replay_rows when a budget is in force. */
export function checkReplayTarget(start: number): void {
  if (deadline !== Infinity && start > REPLAY_LIMITS.replay_rows) throw new ReplayTooFar(start);
}

/**
 * How many steps to run between two clock reads: about 4096 group updates,
 * so a clock read costs little and a slice overruns by little.
 */
export function checkInterval(groups: number): number {
  return Math.max(1, Math.floor(4096 / Math.max(1, groups)));
}
