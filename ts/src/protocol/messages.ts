import { type GroupInit, type MetricState, type MomentumKey, type Rebase, RESUMED_KEYS } from "../core/api";
import { ProtocolError } from "./errors";
import { type HeartbeatRequest, readHeartbeat } from "../live/heartbeat";
import type { RunRow } from "../live/runs";

export type { HeartbeatRequest } from "../live/heartbeat";

/** Protocol version this code speaks. */
export const PROTOCOL_VERSION = 2;
/** Requests above this many bytes are refused with TOO_LARGE. */
export const MAX_REQUEST_BYTES = 1024 * 1024;
/** Most rows one window/epoch request may ask for (WINDOW_TOO_LARGE beyond). */
export const MAX_WINDOW = 65536;
/** Most values (rows × groups) one reply may carry: caps a reply at 8 MiB per array. */
export const MAX_VALUES = 1 << 20;
/** Most param groups an `open` may carry. */
export const MAX_GROUPS = 4096;
export const CAPABILITIES = ["window", "metric", "rebase", "epoch", "stats", "heartbeat"] as const;
export const REQUEST_TYPES = ["hello", "open", "window", "rebase", "epoch", "metric", "stats", "heartbeat"] as const;
export type RequestType = (typeof REQUEST_TYPES)[number];
export const REPLY_TYPES = ["hello", "opened", "window", "metric", "stats", "error"] as const;

// ---- requests (after validation) ----

export interface HelloRequest {
  type: "hello";
  client?: string;
}
export interface OpenRequest {
  type: "open";
  spec: Record<string, unknown>;
  groups: GroupInit[];
  /** The constructor's last_epoch (-1: a fresh schedule). */
  last_epoch: number;
  /** Who is opening (e.g. "host:pid script.py"): only shown in `stats`. */
  client?: string;
}
export interface WindowRequest {
  type: "window" | "rebase";
  hash: string;
  start: number;
  count: number;
  origin?: Rebase;
}
export interface EpochRequest {
  type: "epoch";
  hash: string;
  epochs: number[];
  /** The group lrs before the first step(epoch) (recursive forms start from them). */
  lr?: number[];
}
export interface MetricRequest {
  type: "metric";
  hash: string;
  state: MetricState;
  metric: number;
}
export interface StatsRequest {
  type: "stats";
}
export type RequestBody = HelloRequest | OpenRequest | WindowRequest | EpochRequest | MetricRequest | StatsRequest | HeartbeatRequest;

// ---- replies (what the handler returns before encoding) ----

interface ReplyHead {
  v: number;
  id: number | null;
}
export interface HelloReply extends ReplyHead {
  type: "hello";
  server: string;
  protocol: number;
  capabilities: string[];
  max_window: number;
  max_values: number;
  /** Every size limit a request or spec must keep (name → value). */
  limits: Record<string, number>;
}
export interface OpenedReply extends ReplyHead {
  type: "opened";
  hash: string;
  spec_hash: string;
  canonical: unknown;
  kind: "deterministic" | "metric";
  momentum_key: MomentumKey;
  chainable: boolean;
  groups: number;
  /** First row the schedule refuses (OneCycleLR: total_steps + 1); null when unbounded. */
  row_end: number | null;
  /** Deterministic torch schedules: the row construction leaves (last_epoch + 1). */
  first_row?: number;
  /** Deterministic torch schedules: per group, the keys construction leaves (lr = row first_row). */
  group_keys?: Record<string, number | number[]>[];
  /** Scheduler attributes the constructor sets that a drop-in exposes. */
  attrs?: Record<string, unknown>;
  /** Most rows one window of this handle may ask for (limits: max_window, max_values, window_work). */
  max_rows: number;
  state?: MetricState;
  lr?: number[];
  momentum?: number[] | null;
}
export interface WindowReply extends ReplyHead {
  type: "window";
  hash: string;
  start: number;
  count: number;
  groups: number;
  lr: Uint8Array;
  momentum: Uint8Array | null;
  /** Cyclic schedules: steps in [start, start+count) where a cycle starts. */
  cycle_starts?: number[];
  /** Per-row scheduler attributes (CosineAnnealingWarmRestarts: T_cur, T_i), float64 bins of count values. */
  attrs?: Record<string, Uint8Array>;
  /** The window ends early: torch raises `py` at `row`. */
  stop?: { row: number; py: { type: string; message: string } };
}
export interface MetricReply extends ReplyHead {
  type: "metric";
  state: MetricState;
  lr: number[];
  momentum: number[] | null;
}
export interface ErrorReply extends ReplyHead {
  type: "error";
  code: string;
  message: string;
  path?: string;
  py?: { type: string; message: string };
}
/** One schedule in use, as the server has seen it lately (soft state: a restart clears it). */
export interface ScheduleActivity {
  hash: string;
  spec_hash: string;
  type: string;
  groups: number;
  kind: "deterministic" | "metric";
  clients: string[];
  opens: number;
  windows: number;
  metric_steps: number;
  /** Rows served up to (exclusive): the run is at most this far, at least one window behind. */
  rows_served: number;
  row_end: number | null;
  first_seen: number;
  last_seen: number;
}
export interface StatsReply extends ReplyHead {
  type: "stats";
  server: string;
  uptime_s: number;
  requests: number;
  errors: number;
  cache_size: number;
  cache_capacity: number;
  cache_bytes: number;
  cache_max_bytes: number;
  schedules: ScheduleActivity[];
  /** One row per run that sent heartbeats (revision 2.2, additive). */
  runs: Omit<RunRow, "changes">[];
}
/** What the handler gives for a message that gets no reply (`heartbeat`): never sent. */
export interface NoReply extends ReplyHead {
  type: "none";
}
export type Reply = HelloReply | OpenedReply | WindowReply | MetricReply | StatsReply | ErrorReply | NoReply;

// ---- validation: each reader names the field it refuses ----

/** A decoded msgpack map (msgpackr also yields arrays, bins, Dates and its C1 marker as objects). */
export function isPlainMap(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** A short, never-throwing description of a value for error messages. */
function describe(value: unknown): string {
  if (value === undefined) return "(missing)";
  if (typeof value === "bigint") return `${value}`;
  if (typeof value === "string") return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === "number" || typeof value === "boolean" || value === null) return String(value);
  return Array.isArray(value) ? "a list" : typeof value === "object" ? "a map or bin" : typeof value;
}

function bad(path: string, what: string): never {
  throw new ProtocolError("BAD_REQUEST", `${path}: ${what}`, path);
}

function isSafeIntAtLeast(value: unknown, min: number): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= min;
}

/** The request id, or null when it is missing or not a safe integer ≥ 0 (then it cannot be echoed). */
export function readId(body: Record<string, unknown>): number | null {
  return isSafeIntAtLeast(body.id, 0) ? body.id : null;
}

function readString(body: Record<string, unknown>, key: string): string {
  const value = body[key];
  if (typeof value !== "string") bad(key, "expected a string");
  return value;
}

function readInt(body: Record<string, unknown>, key: string, min: number, path = key): number {
  const value = body[key];
  if (!isSafeIntAtLeast(value, min)) bad(path, `expected an integer >= ${min}`);
  return value;
}

function readFinite(value: unknown, path: string): number {
  if (typeof value !== "number" || !Number.isFinite(value)) bad(path, "expected a finite number");
  return value;
}

function readMap(body: Record<string, unknown>, key: string): Record<string, unknown> {
  const value = body[key];
  if (!isPlainMap(value)) bad(key, "expected a map");
  return value;
}

function readFiniteList(value: unknown, path: string, maxLength: number): number[] {
  if (!Array.isArray(value)) bad(path, "expected a list of numbers");
  if (value.length > maxLength) bad(path, `more than ${maxLength} entries`);
  return value.map((x, i) => readFinite(x, `${path}[${i}]`));
}

/**
 * One param group, normalized: null/absent momentum and betas are dropped,
 * so `{lr: 0.1}` and `{lr: 0.1, momentum: null}` get the same handle.
 */
function readGroup(value: unknown, path: string): GroupInit {
  if (!isPlainMap(value)) bad(path, "expected a map");
  const group: GroupInit = { lr: readFinite(value.lr, `${path}.lr`) };
  if (value.initial_lr !== undefined && value.initial_lr !== null) {
    group.initial_lr = readFinite(value.initial_lr, `${path}.initial_lr`);
  }
  if (value.lr_dtype !== undefined && value.lr_dtype !== null) {
    if (value.lr_dtype !== "float32" && value.lr_dtype !== "float64") bad(`${path}.lr_dtype`, 'expected "float32", "float64" or nil');
    group.lr_dtype = value.lr_dtype;
  }
  if (value.momentum !== undefined && value.momentum !== null) {
    group.momentum = readFinite(value.momentum, `${path}.momentum`);
  }
  if (value.betas !== undefined && value.betas !== null) {
    const betas = value.betas;
    if (!Array.isArray(betas) || betas.length !== 2) bad(`${path}.betas`, "expected [beta1, beta2]");
    group.betas = [readFinite(betas[0], `${path}.betas[0]`), readFinite(betas[1], `${path}.betas[1]`)];
  }
  for (const key of RESUMED_KEYS) {
    if (value[key] !== undefined && value[key] !== null) group[key] = readFinite(value[key], `${path}.${key}`);
  }
  return group;
}

function readOpen(body: Record<string, unknown>): OpenRequest {
  const spec = readMap(body, "spec");
  const groups = body.groups;
  if (!Array.isArray(groups) || groups.length === 0) bad("groups", "expected a non-empty list of groups");
  if (groups.length > MAX_GROUPS) bad("groups", `more than ${MAX_GROUPS} groups`);
  const request: OpenRequest = { type: "open", spec, groups: groups.map((g, i) => readGroup(g, `groups[${i}]`)), last_epoch: -1 };
  if (body.last_epoch !== undefined && body.last_epoch !== null) request.last_epoch = readInt(body, "last_epoch", -1);
  if (body.client !== undefined && body.client !== null) {
    if (typeof body.client !== "string" || body.client.length > 256) bad("client", "expected a string of at most 256 characters");
    request.client = body.client;
  }
  return request;
}

function readOrigin(value: unknown): Rebase {
  if (!isPlainMap(value)) bad("origin", "expected a map {step, lr}");
  const step = readInt(value, "step", 0, "origin.step");
  if (!Array.isArray(value.lr) || value.lr.length === 0) bad("origin.lr", "expected a non-empty list of numbers");
  const origin: Rebase = { step, lr: readFiniteList(value.lr, "origin.lr", MAX_GROUPS) };
  if (value.attrs !== undefined && value.attrs !== null) {
    const attrs = value.attrs;
    if (!isPlainMap(attrs) || Object.keys(attrs).length > 8) bad("origin.attrs", "expected a map of at most 8 names to numbers");
    for (const [name, v] of Object.entries(attrs)) {
      if (typeof v !== "number" || !Number.isFinite(v)) bad(`origin.attrs.${name}`, "expected a finite number");
    }
    origin.attrs = attrs as Record<string, number>;
  }
  return origin;
}

function readWindow(body: Record<string, unknown>, type: "window" | "rebase"): WindowRequest {
  const hash = readString(body, "hash");
  const start = readInt(body, "start", 0);
  const count = readInt(body, "count", 1);
  if (count > MAX_WINDOW) {
    throw new ProtocolError("WINDOW_TOO_LARGE", `count ${count} is over max_window ${MAX_WINDOW}`, "count");
  }
  if (start > Number.MAX_SAFE_INTEGER - count) bad("start", "start + count is not a safe integer");
  const request: WindowRequest = { type, hash, start, count };
  if (body.origin !== undefined && body.origin !== null) {
    request.origin = readOrigin(body.origin);
    if (start <= request.origin.step) bad("start", "must be > origin.step");
  } else if (type === "rebase") {
    bad("origin", "rebase needs an origin");
  }
  return request;
}

function readEpoch(body: Record<string, unknown>): EpochRequest {
  const hash = readString(body, "hash");
  const epochs = body.epochs;
  if (Array.isArray(epochs) && epochs.length > MAX_WINDOW) {
    throw new ProtocolError("WINDOW_TOO_LARGE", `${epochs.length} epochs is over max_window ${MAX_WINDOW}`, "epochs");
  }
  const list = readFiniteList(epochs, "epochs", MAX_WINDOW);
  if (list.length === 0) bad("epochs", "expected at least one epoch");
  const request: EpochRequest = { type: "epoch", hash, epochs: list };
  if (body.lr !== undefined && body.lr !== null) request.lr = readFiniteList(body.lr, "lr", MAX_GROUPS);
  return request;
}

function readMetric(body: Record<string, unknown>): MetricRequest {
  const hash = readString(body, "hash");
  const state = readMap(body, "state");
  // Any float, NaN and infinities included: torch's ReduceLROnPlateau accepts them.
  const metric = body.metric;
  if (typeof metric !== "number") bad("metric", "expected a number");
  return { type: "metric", hash, state, metric };
}

/**
 * Checks the common fields and the message's own fields. Throws
 * ProtocolError (BAD_VERSION, UNKNOWN_TYPE, BAD_REQUEST, WINDOW_TOO_LARGE).
 */
export function readRequest(body: Record<string, unknown>): RequestBody {
  if (body.v !== PROTOCOL_VERSION) {
    throw new ProtocolError("BAD_VERSION", `protocol version ${describe(body.v)} is not spoken here (this server speaks ${PROTOCOL_VERSION})`, "v");
  }
  if (readId(body) === null) bad("id", "expected an integer >= 0");
  const type = body.type;
  if (typeof type !== "string" || !(REQUEST_TYPES as readonly string[]).includes(type)) {
    throw new ProtocolError("UNKNOWN_TYPE", `unknown message type ${describe(type)}`, "type");
  }
  switch (type as RequestType) {
    case "hello": {
      if (body.client !== undefined && body.client !== null && typeof body.client !== "string") bad("client", "expected a string");
      return { type: "hello", client: (body.client as string | undefined) ?? undefined };
    }
    case "open":
      return readOpen(body);
    case "window":
      return readWindow(body, "window");
    case "rebase":
      return readWindow(body, "rebase");
    case "epoch":
      return readEpoch(body);
    case "metric":
      return readMetric(body);
    case "stats":
      return { type: "stats" };
    case "heartbeat":
      return readHeartbeat(body);
  }
}
