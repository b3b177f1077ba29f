/**
 * One store interface, two backends (sqlite.ts: one file, node:sqlite;
 * postgres.ts: shared by server replicas). Async throughout because pg is;
 * the SQLite backend answers synchronously inside the promise.
 *
 * Every write is one transaction: a request either lands whole or leaves the
 * store as it was. Versions are never rewritten; alias moves and run events
 * are appended.
 */

export interface Version {
  name: string;
  version: number;
  spec_hash: string;
  /** The spec with defaults filled in (what spec_hash covers). */
  canonical: unknown;
  message: string;
  author: string;
  /** Unix seconds. */
  created_at: number;
}

export type VersionInfo = Omit<Version, "canonical">;

export interface AliasEvent {
  alias: string;
  from: number | null;
  to: number;
  who: string;
  why: string;
  at: number;
}

export interface RunIdentity {
  id: string;
  name?: string;
  rank?: number;
  world_size?: number;
  host?: string;
  pid?: number;
}

/** What re-opens a handle on a server that never saw it: the open's own inputs. */
export interface HandleRecord {
  hash: string;
  canonical: unknown;
  groups: unknown[];
  last_epoch: number;
}

export interface Use {
  ref: string;
  name: string;
  version: number;
  spec_hash: string;
  step: number;
  at: number;
  /** The handle the use opened (its groups and last_epoch: what a replay rebuilds). */
  hash: string;
  groups: unknown[];
  last_epoch: number;
  /** The canonical spec the use opened (a module's with the run's params), read from its handle. */
  spec?: unknown;
}

export interface RunEvent {
  kind: "origin" | "epoch" | "metric";
  step: number;
  data: unknown;
  at: number;
}

/** A run's row in either backend; toRunRecord adds its uses. */
export interface RunRow {
  id: string;
  name: string | null;
  rank: number | null;
  world_size: number | null;
  host: string | null;
  pid: number | null;
  first_seen: number;
  last_seen: number;
  last_step: number;
}

export interface RunRecord extends RunRow {
  /** The first MAX_LISTED_USES of a listed run; up to MAX_RUN_USES of one run asked for. */
  uses: Use[];
  /** How many uses the run recorded (at most MAX_RUN_USES). */
  uses_total: number;
  /** Only when one run is asked for. */
  events?: RunEvent[];
}

export interface Publish {
  name: string;
  spec_hash: string;
  canonical: unknown;
  message: string;
  author: string;
  at: number;
}

export interface AliasMove {
  name: string;
  alias: string;
  to: number;
  /** undefined: unconditional; null: the alias must not exist; a number: where it must point now. */
  expect?: number | null;
  who: string;
  why: string;
  at: number;
}

export interface History {
  versions: VersionInfo[];
  aliases: Record<string, number>;
  events: AliasEvent[];
}

export interface RunQuery {
  /** Runs that used this name (any version, or `version` alone). */
  name?: string;
  version?: number;
  /** That run alone, with its events. */
  run?: string;
}

/** Most runs one `runs` reply lists (newest first): a bounded reply. */
export const MAX_RUNS = 1000;
/** Most events one run keeps for replay (a run past it is not replayable in full). */
export const MAX_RUN_EVENTS = 1_000_000;
/** Most uses (opens) one run keeps: a run re-opened past it is still served, its later opens are not recorded. */
export const MAX_RUN_USES = 1000;
/** Most uses of each run a listing carries (its first ones): 1000 runs make a reply of a few MB at most. */
export const MAX_LISTED_USES = 10;

/** One row of the live view's run table as the store keeps it: the row is opaque JSON. */
export interface LiveRunDoc {
  id: string;
  last_seen: number;
  row: string;
}

export interface Store {
  /** "sqlite" or "postgres" (for logs and `hello`). */
  readonly kind: string;
  /** The backend tells other processes' alias moves (pg NOTIFY): alias targets may be cached. */
  readonly notifies: boolean;
  publish(p: Publish): Promise<{ version: Version; created: boolean }>;
  version(name: string, version: number): Promise<Version | null>;
  latest(name: string): Promise<Version | null>;
  versionByHash(name: string, specHash: string): Promise<Version | null>;
  aliasTarget(name: string, alias: string): Promise<number | null>;
  /** Throws RegistryError UNKNOWN_REF (no such version) or ALIAS_CONFLICT (expect lost). */
  moveAlias(m: AliasMove): Promise<AliasEvent>;
  /** Versions, aliases and alias events of a name, oldest first; with `at`, as they were then. */
  history(name: string, at?: number): Promise<History>;
  /** A run's open: the run's row, the use, and the handle's inputs, in one transaction. */
  recordUse(run: RunIdentity, use: Use, handle: HandleRecord): Promise<void>;
  /** A per-run input that windows cannot recompute (an origin, epochs, a metric step). */
  recordEvent(runId: string, event: RunEvent): Promise<void>;
  /** The furthest step a run has reached (windows it asked for). */
  touchRun(runId: string, step: number, at: number): Promise<void>;
  /** The handle's inputs alone (an open by ref without a run). */
  saveHandle(handle: HandleRecord): Promise<void>;
  handle(hash: string): Promise<HandleRecord | null>;
  runs(q: RunQuery): Promise<RunRecord[]>;
  /** Every published name, sorted. */
  names(): Promise<string[]>;
  /** The live view's run rows (one JSON document each), upserted in one transaction per batch. */
  saveLiveRuns(rows: LiveRunDoc[]): Promise<void>;
  /** The `limit` most recently seen live-view rows, most recent first. */
  liveRuns(limit: number): Promise<LiveRunDoc[]>;
  /** Called with (name, alias) whenever any process moves an alias; `null` when moves may have been missed. */
  watch(listener: (moved: { name: string; alias: string } | null) => void): void;
  close(): Promise<void>;
}

export type RegistryCode = "BAD_REF" | "UNKNOWN_REF" | "ALIAS_CONFLICT" | "FORBIDDEN" | "STORE_UNAVAILABLE";

/** A registry refusal: the server turns it into an error reply with this code. */
export class RegistryError extends Error {
  constructor(
    readonly code: RegistryCode,
    message: string,
    readonly path?: string,
  ) {
    super(message);
    this.name = "RegistryError";
  }
}

/** Anything a backend throws that is not a RegistryError means it could not do the work. */
export function unavailable(kind: string, err: unknown): RegistryError {
  if (err instanceof RegistryError) return err;
  const text = err instanceof Error ? err.message : String(err);
  return new RegistryError("STORE_UNAVAILABLE", `the ${kind} store is unavailable: ${text}`);
}

export function aliasConflict(m: AliasMove, now: number | null): RegistryError {
  const where = now === null ? "does not exist" : `points at version ${now}`;
  const wanted = m.expect === null ? "not to exist" : `to point at version ${m.expect}`;
  return new RegistryError("ALIAS_CONFLICT", `${m.name}@${m.alias} ${where} (expected ${wanted}): re-read and retry`, "expect");
}

export function unknownVersion(name: string, version: number, path = "version"): RegistryError {
  return new RegistryError("UNKNOWN_REF", `${name}@${version}: no such version`, path);
}

export function toRunRecord(row: RunRow, uses: Use[], usesTotal: number, events?: RunEvent[]): RunRecord {
  const record: RunRecord = {
    id: row.id,
    name: row.name,
    rank: row.rank === null ? null : Number(row.rank),
    world_size: row.world_size === null ? null : Number(row.world_size),
    host: row.host,
    pid: row.pid === null ? null : Number(row.pid),
    uses,
    uses_total: usesTotal,
    last_step: Number(row.last_step),
    first_seen: Number(row.first_seen),
    last_seen: Number(row.last_seen),
  };
  if (events) record.events = events;
  return record;
}

/**
 * The tables both backends keep, in a dialect's words for a float, a 64-bit
 * integer and an auto-numbered key.
 */
export function schemaSql(d: { float: string; int64: string; autoId: string }): string {
  return `
CREATE TABLE IF NOT EXISTS versions (
  name TEXT NOT NULL, version INTEGER NOT NULL, spec_hash TEXT NOT NULL, canonical TEXT NOT NULL,
  message TEXT NOT NULL, author TEXT NOT NULL, created_at ${d.float} NOT NULL,
  PRIMARY KEY (name, version), UNIQUE (name, spec_hash));
CREATE TABLE IF NOT EXISTS aliases (
  name TEXT NOT NULL, alias TEXT NOT NULL, version INTEGER NOT NULL, PRIMARY KEY (name, alias));
CREATE TABLE IF NOT EXISTS alias_events (
  id ${d.autoId}, name TEXT NOT NULL, alias TEXT NOT NULL,
  from_version INTEGER, to_version INTEGER NOT NULL, who TEXT NOT NULL, why TEXT NOT NULL, at ${d.float} NOT NULL);
CREATE INDEX IF NOT EXISTS alias_events_name ON alias_events (name, id);
CREATE TABLE IF NOT EXISTS runs (
  id TEXT PRIMARY KEY, name TEXT, rank INTEGER, world_size INTEGER, host TEXT, pid INTEGER,
  first_seen ${d.float} NOT NULL, last_seen ${d.float} NOT NULL, last_step ${d.int64} NOT NULL);
CREATE TABLE IF NOT EXISTS uses (
  id ${d.autoId}, run_id TEXT NOT NULL, ref TEXT NOT NULL, name TEXT NOT NULL,
  version INTEGER NOT NULL, spec_hash TEXT NOT NULL, step ${d.int64} NOT NULL, at ${d.float} NOT NULL,
  hash TEXT NOT NULL, groups TEXT NOT NULL, last_epoch ${d.int64} NOT NULL);
CREATE INDEX IF NOT EXISTS uses_run ON uses (run_id, id);
CREATE INDEX IF NOT EXISTS uses_name ON uses (name, version);
CREATE TABLE IF NOT EXISTS run_events (
  id ${d.autoId}, run_id TEXT NOT NULL, kind TEXT NOT NULL, step ${d.int64} NOT NULL,
  data TEXT NOT NULL, at ${d.float} NOT NULL);
CREATE INDEX IF NOT EXISTS run_events_run ON run_events (run_id, id);
CREATE TABLE IF NOT EXISTS handles (
  hash TEXT PRIMARY KEY, canonical TEXT NOT NULL, groups TEXT NOT NULL, last_epoch ${d.int64} NOT NULL);
CREATE TABLE IF NOT EXISTS live_runs (id TEXT PRIMARY KEY, last_seen ${d.float} NOT NULL, row TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS live_runs_seen ON live_runs (last_seen);
`;
}

/** Opens the store a `--registry` value names: a postgres:// URL or a SQLite file path. */
export async function openStore(location: string): Promise<Store> {
  if (/^postgres(ql)?:\/\//.test(location)) {
    const { PostgresStore } = await import("./postgres");
    return PostgresStore.open(location);
  }
  const { SqliteStore } = await import("./sqlite");
  return SqliteStore.open(location);
}
