/**
 * The server's table of runs: one row per run, fed by heartbeats. The web
 * view and `stats` read it through `RunTable`, so a store that persists runs
 * (the registry's) can stand in for the in-memory one.
 */
import type { HeartbeatRequest } from "./heartbeat";

export type RunState = "running" | "finished" | "lost";

/** A step where a metric-driven schedule changed the lr (as heartbeats saw it). */
export interface LrChange {
  step: number;
  lr: number[];
}

export interface RunRow {
  id: string;
  name: string;
  host: string | null;
  pid: number | null;
  rank: number | null;
  world_size: number | null;
  hash: string;
  spec_hash: string;
  /** The registry ref and version, when the run opened its schedule by ref. */
  ref: string | null;
  version: number | null;
  /** The schedule's type (`OneCycleLR`, `rex`, ...) and kind, when the server still holds its handle. */
  type: string;
  kind: "deterministic" | "metric" | null;
  step: number;
  total: number | null;
  lr: number[];
  momentum: number[] | null;
  state: RunState;
  first_seen: number;
  last_seen: number;
  changes: LrChange[];
}

/** What the server knows about the handle a heartbeat names. */
export interface ScheduleInfo {
  type: string;
  kind: "deterministic" | "metric";
}

export interface RunTable {
  /** Records one heartbeat received at `at` (Unix seconds). */
  heartbeat(hb: HeartbeatRequest, at: number, schedule?: ScheduleInfo): void;
  /** Every run, most recently seen first, with its state as of `now`. */
  list(now: number): RunRow[];
  get(id: string, now: number): RunRow | undefined;
  /** Bumped on every change: a watcher re-reads only when it moved. */
  readonly revision: number;
  /** The registry resolved `ref` to `version`, opened as handle `hash`: heartbeats naming both show it. */
  resolved?(ref: string, hash: string, version: number): void;
}

/** A run with no heartbeat for this long is lost (clients send one at least every 5 s). */
export const DEFAULT_LOST_AFTER_S = 15;
export const RUN_CAPACITY = 4096;
/**
 * What the table may hold, estimated: past it the least recently seen runs
 * go. Honest rows are ~1 KiB; a heartbeat may carry 64 groups and 16 changes,
 * and without this 4096 such runs could pin hundreds of MiB.
 */
export const RUN_TABLE_BYTES = 32 * 1024 * 1024;
const MAX_CHANGES = 256;
/** lr values one row keeps in its changes: 256 changes of 16 groups, or 64 of 64. */
export const MAX_CHANGE_VALUES = 4096;

const RESOLVED_CAPACITY = 4096;

export class MemoryRunTable implements RunTable {
  protected readonly rows = new Map<string, RunRow>();
  /** Each row's estimated bytes, and their sum. */
  private readonly sizes = new Map<string, number>();
  private totalBytes = 0;
  /** `ref` + "\n" + `hash` → version: a name's spec_hash names one version, so this never goes stale. */
  private readonly versions = new Map<string, number>();
  revision = 0;

  constructor(
    readonly lostAfterS = DEFAULT_LOST_AFTER_S,
    private readonly capacity = RUN_CAPACITY,
    readonly maxBytes = RUN_TABLE_BYTES,
  ) {}

  /** Rows held. */
  get size(): number {
    return this.rows.size;
  }

  /** Estimated bytes held. */
  get bytes(): number {
    return this.totalBytes;
  }

  heartbeat(hb: HeartbeatRequest, at: number, schedule?: ScheduleInfo): void {
    let row = this.rows.get(hb.run.id);
    if (row) this.rows.delete(hb.run.id); // re-insert: the map stays in least recently seen order
    else {
      row = {
        id: hb.run.id,
        name: hb.run.name,
        host: null,
        pid: null,
        rank: null,
        world_size: null,
        hash: hb.hash,
        spec_hash: hb.spec_hash,
        ref: null,
        version: null,
        type: "?",
        kind: null,
        step: hb.step,
        total: null,
        lr: hb.lr,
        momentum: null,
        state: "running",
        first_seen: at,
        last_seen: at,
        changes: [],
      };
    }
    const kind = schedule?.kind ?? (row.hash === hb.hash ? row.kind : null);
    const version =
      hb.ref === undefined ? null : (this.versions.get(`${hb.ref}\n${hb.hash}`) ?? (row.ref === hb.ref && row.hash === hb.hash ? row.version : null));
    if (row.hash !== hb.hash) row.changes = [];
    if (hb.changes) {
      // The client saw each change at its step.
      const last = row.changes.length ? row.changes[row.changes.length - 1].step : -1;
      row.changes.push(...hb.changes.filter((c) => c.step > last));
    } else if (kind === "metric" && (row.changes.length === 0 || !sameValues(row.lr, hb.lr))) {
      // Older clients: where a heartbeat first saw a new lr.
      row.changes.push({ step: hb.step, lr: hb.lr });
    }
    trimChanges(row.changes);
    Object.assign(row, {
      name: hb.run.name,
      host: hb.run.host ?? null,
      pid: hb.run.pid ?? null,
      rank: hb.run.rank ?? null,
      world_size: hb.run.world_size ?? null,
      hash: hb.hash,
      spec_hash: hb.spec_hash,
      ref: hb.ref ?? null,
      version,
      type: schedule?.type ?? row.type,
      kind,
      step: hb.step,
      total: hb.total,
      lr: hb.lr,
      momentum: hb.momentum,
      state: hb.state,
      last_seen: at,
    });
    this.put(row);
  }

  resolved(ref: string, hash: string, version: number): void {
    const key = `${ref}\n${hash}`;
    this.versions.delete(key);
    this.versions.set(key, version);
    if (this.versions.size > RESOLVED_CAPACITY) this.versions.delete(this.versions.keys().next().value as string);
  }

  /** Puts back a row kept from before (oldest first, so the newest stay when over capacity). */
  protected restore(row: RunRow): void {
    trimChanges(row.changes);
    this.rows.delete(row.id);
    this.put(row);
  }

  /** (Re-)inserts a row as the most recently seen, then forgets the least recently seen while over a bound. */
  private put(row: RunRow): void {
    this.totalBytes -= this.sizes.get(row.id) ?? 0;
    const bytes = rowBytes(row);
    this.sizes.set(row.id, bytes);
    this.totalBytes += bytes;
    this.rows.set(row.id, row);
    // The row just written stays even alone over the budget (a row is at most ~50 KiB).
    while (this.rows.size > 1 && (this.rows.size > this.capacity || this.totalBytes > this.maxBytes)) {
      const oldest = this.rows.keys().next().value as string;
      this.rows.delete(oldest);
      this.totalBytes -= this.sizes.get(oldest) ?? 0;
      this.sizes.delete(oldest);
    }
    this.revision += 1;
  }

  list(now: number): RunRow[] {
    return [...this.rows.values()].reverse().map((row) => this.view(row, now));
  }

  get(id: string, now: number): RunRow | undefined {
    const row = this.rows.get(id);
    return row && this.view(row, now);
  }

  private view(row: RunRow, now: number): RunRow {
    const state = row.state === "running" && now - row.last_seen > this.lostAfterS ? "lost" : row.state;
    return { ...row, state, changes: [...row.changes] };
  }
}

/** Keeps the latest changes within MAX_CHANGES and MAX_CHANGE_VALUES. */
function trimChanges(changes: LrChange[]): void {
  let values = 0;
  let keep = 0;
  for (let i = changes.length - 1; i >= 0 && keep < MAX_CHANGES; i--, keep++) {
    values += changes[i].lr.length;
    if (values > MAX_CHANGE_VALUES) break;
  }
  if (keep < changes.length) changes.splice(0, changes.length - keep);
}

/**
 * A row's heap footprint, estimated generously: the object and its arrays,
 * 2 bytes per string character, 8 per number, ~48 per change object.
 */
function rowBytes(row: RunRow): number {
  let chars = 0;
  for (const text of [row.id, row.name, row.host, row.hash, row.spec_hash, row.ref, row.type]) chars += text?.length ?? 0;
  let numbers = row.lr.length + (row.momentum?.length ?? 0);
  for (const change of row.changes) numbers += change.lr.length + 6;
  return 512 + 2 * chars + 8 * numbers;
}

function sameValues(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
