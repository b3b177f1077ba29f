/**
 * The message layer: decoded request in, reply out. No sockets here, so the
 * tests and the vector generator call it directly; the only state is the
 * bound-spec cache, and any server with the same code gives the same reply.
 */
import { redactRun } from "./labels";
import type { Bound, GroupInit, Rows } from "../core/api";
import { Refusal, SpecError } from "../core/api";
import { SPEC_LIMITS, checkSpecShape, maxRowsFor } from "../core/limits";
import { REPLAY_LIMITS, ReplayPending, ReplayTooFar, withReplayBudget } from "../core/budget";
import { contentHash } from "../core/canonical";
import {
  CAPABILITIES,
  ErrorReply,
  EpochRequest,
  HelloReply,
  MAX_DECODE_DEPTH,
  MAX_DECODE_NODES,
  MAX_GROUPS,
  MAX_REQUEST_BYTES,
  MAX_VALUES,
  MAX_WINDOW,
  MetricReply,
  MetricRequest,
  OpenRequest,
  OpenedReply,
  PROTOCOL_VERSION,
  ProtocolError,
  StatsReply,
  HeartbeatRequest,
  NoReply,
  Reply,
  RequestBody,
  WindowReply,
  WindowRequest,
  decodeBody,
  encodeBody,
  float64ToBin,
  isPlainMap,
  readId,
  readRequest,
  wireInt,
} from "../protocol";
import { Activity } from "./activity";
import { MemoryRunTable, type RunTable } from "../live/runs";
import { LruCache } from "./lru";

export type BindFn = (spec: unknown, groups: GroupInit[], lastEpoch?: number) => Bound;

export const SERVER_NAME = "lrbridge-ts/0.1.0";
/** Entries are cheap (a spec and a few closures); the byte budget is what bounds memory. */
export const DEFAULT_CACHE_SIZE = 65536;
export const DEFAULT_CACHE_BYTES = 512 * 1024 * 1024;
/** Runs a `stats` reply lists (most recently seen first). */
export const STATS_RUNS = 1024;

export interface HandlerOptions {
  bind: BindFn;
  cacheSize?: number;
  /** The clock `stats` reads (ms since the epoch); fixed in the wire vectors. */
  now?: () => number;
  /** Budget of the cache in estimated bytes (bound specs and their pooled simulations). */
  cacheBytes?: number;
  /** Milliseconds of replay one request may take before REPLAY_PENDING (REPLAY_LIMITS.replay_slice_ms). */
  replaySliceMs?: number;
  /** Told about every INTERNAL reply (the server logs the stack). */
  onInternalError?: (err: unknown) => void;
  /** Where heartbeats go (default: an in-memory table). */
  runs?: RunTable;
}

/** What one request body turned into: the reply, and the request when it was valid. */
export interface Handled {
  reply: Reply;
  request?: RequestBody;
  /** No reply goes out (a heartbeat, even a malformed one: nobody waits for it). */
  silent?: boolean;
}

export class Handler {
  private readonly cache: LruCache<string, Bound>;
  /** Soft, observational state for `stats`: never changes another reply. */
  private readonly activity: Activity;
  /** The runs heartbeats report (the live view's table). */
  readonly runs: RunTable;
  private readonly now: () => number;
  private readonly startedAt: number;
  private requests = 0;
  private errors = 0;

  private readonly replaySliceMs: number;
  /** Rows one window of a bound spec may have (window_work), set when it is cached. */
  private readonly maxRows = new WeakMap<Bound, number>();

  constructor(private readonly options: HandlerOptions) {
    this.cache = new LruCache(options.cacheSize ?? DEFAULT_CACHE_SIZE, options.cacheBytes ?? DEFAULT_CACHE_BYTES);
    this.replaySliceMs = options.replaySliceMs ?? REPLAY_LIMITS.replay_slice_ms;
    this.now = options.now ?? Date.now;
    this.activity = new Activity(this.now);
    this.runs = options.runs ?? new MemoryRunTable();
    this.startedAt = this.now();
  }

  /** Decoded request → reply. Never throws. */
  handle(body: unknown): Reply {
    return this.handleDecoded(body).reply;
  }

  /**
   * Raw body bytes → encoded reply (and what it was, for logging). Never throws.
   * `authenticated`: the peer came through CURVE or ipc (`stats` shows it who opened what).
   */
  handleBytes(bytes: Uint8Array, peer = "", authenticated = true): Handled & { bytes: Buffer } {
    const handled = this.handleRaw(bytes, peer, authenticated);
    return { ...handled, bytes: handled.silent ? Buffer.alloc(0) : this.encode(handled.reply) };
  }

  private handleRaw(bytes: Uint8Array, peer: string, authenticated: boolean): Handled {
    if (bytes.byteLength > MAX_REQUEST_BYTES) {
      return { reply: errorReply(null, "TOO_LARGE", `request of ${bytes.byteLength} bytes is over ${MAX_REQUEST_BYTES}`) };
    }
    let body: unknown;
    try {
      body = decodeBody(bytes);
    } catch (err) {
      return { reply: errorReply(null, "BAD_FRAME", `body is not one msgpack value: ${messageOf(err)}`) };
    }
    return this.handleDecoded(body, peer, authenticated);
  }

  /** A decoded body → reply, counted in `stats`. Never throws. */
  handleDecoded(body: unknown, peer = "", authenticated = true): Handled {
    const handled = this.handleCounted(body, peer, authenticated);
    if (isPlainMap(body) && body.type === "heartbeat") handled.silent = true;
    this.requests += 1;
    if (handled.reply.type === "error") this.errors += 1;
    return handled;
  }

  private handleCounted(body: unknown, peer: string, authenticated: boolean): Handled {
    if (!isPlainMap(body)) return { reply: errorReply(null, "BAD_FRAME", "body is not a msgpack map") };
    const id = readId(body);
    let request: RequestBody;
    try {
      request = readRequest(body);
    } catch (err) {
      return { reply: this.replyForError(id, err) };
    }
    try {
      return { reply: this.dispatch(request, id as number, peer, authenticated), request };
    } catch (err) {
      return { reply: this.replyForError(id, err), request };
    }
  }

  /** Counts a reply made outside this class (the registry's) in `stats`. */
  count(reply: Reply): void {
    this.requests += 1;
    if (reply.type === "error") this.errors += 1;
  }

  /** Encodes a reply; a reply that cannot be encoded becomes an INTERNAL error. */
  encode(reply: Reply): Buffer {
    try {
      return encodeBody(withWireInts(reply));
    } catch (err) {
      this.options.onInternalError?.(err);
      return encodeBody(withWireInts(errorReply(reply.id, "INTERNAL", `reply could not be encoded: ${messageOf(err)}`)));
    }
  }

  private dispatch(request: RequestBody, id: number, peer: string, authenticated: boolean): Reply {
    switch (request.type) {
      case "hello":
        return this.hello(id);
      case "open":
        return this.open(request, id, peer);
      case "window":
      case "rebase":
        return this.window(request, id);
      case "epoch":
        return this.epoch(request, id);
      case "metric":
        return this.metric(request, id);
      case "stats":
        return this.stats(id, authenticated);
      case "heartbeat":
        return this.heartbeat(request, id);
    }
  }

  private heartbeat(request: HeartbeatRequest, id: number): NoReply {
    const bound = this.cache.peek(request.hash);
    const canonical = bound?.canonical as { type?: unknown } | undefined;
    const schedule = bound && { type: typeof canonical?.type === "string" ? canonical.type : "?", kind: bound.kind };
    this.runs.heartbeat(request, this.now() / 1000, schedule);
    return { v: PROTOCOL_VERSION, id, type: "none" };
  }

  /**
   * Rows [start, start + count) of a deterministic handle the server holds,
   * for the live view's planned curve; undefined when the handle is gone or
   * metric-driven. Read-only: it touches neither the cache order nor stats.
   */
  plannedRows(hash: string, start: number, count: number): { lr: number[]; momentum: number[] | null; groups: number; rowEnd: number | null } | undefined {
    const bound = this.cache.peek(hash);
    if (!bound || bound.kind !== "deterministic") return undefined;
    const maxRows = Math.min(this.maxRows.get(bound) ?? MAX_WINDOW, Math.floor(MAX_VALUES / bound.groups));
    const end = bound.rowEnd === null ? start + count : Math.min(start + count, bound.rowEnd);
    const lr: number[] = [];
    const momentum: number[] = [];
    let hasMomentum = true;
    for (let at = start; at < end; at += maxRows) {
      const rows = callSchedule(() => withReplayBudget(this.replaySliceMs * 20, () => bound.rows(at, Math.min(maxRows, end - at))));
      for (const v of rows.lr) lr.push(v);
      if (rows.momentum === null) hasMomentum = false;
      else for (const v of rows.momentum) momentum.push(v);
      if (rows.stop) break;
    }
    return { lr, momentum: hasMomentum ? momentum : null, groups: bound.groups, rowEnd: bound.rowEnd ?? null };
  }

  private stats(id: number, authenticated: boolean): StatsReply {
    return {
      v: PROTOCOL_VERSION,
      id,
      type: "stats",
      server: SERVER_NAME,
      uptime_s: (this.now() - this.startedAt) / 1000,
      requests: this.requests,
      errors: this.errors,
      cache_size: this.cache.size,
      cache_capacity: this.cache.capacity,
      cache_bytes: this.cache.bytes,
      cache_max_bytes: this.cache.maxBytes,
      schedules: this.activity.list(authenticated),
      // Bounded like the rest of the reply; the web view has each run's lr changes.
      runs: this.runs
        .list(this.now() / 1000)
        .slice(0, STATS_RUNS)
        .map(({ changes: _changes, ...run }) => (authenticated ? run : redactRun(run))),
    };
  }

  private hello(id: number): HelloReply {
    return {
      v: PROTOCOL_VERSION,
      id,
      type: "hello",
      server: SERVER_NAME,
      protocol: PROTOCOL_VERSION,
      capabilities: [...CAPABILITIES],
      max_window: MAX_WINDOW,
      max_values: MAX_VALUES,
      limits: {
        request_bytes: MAX_REQUEST_BYTES,
        body_depth: MAX_DECODE_DEPTH,
        body_nodes: MAX_DECODE_NODES,
        groups: MAX_GROUPS,
        ...SPEC_LIMITS,
        ...REPLAY_LIMITS,
      },
    };
  }

  private open(request: OpenRequest, id: number, peer: string): OpenedReply {
    let bound: Bound;
    let schedules: number;
    try {
      schedules = checkSpecShape(request.spec, request.groups.length);
      bound = this.options.bind(request.spec, request.groups, request.last_epoch);
    } catch (err) {
      if (err instanceof SpecError) throw new ProtocolError("SPEC_INVALID", err.message, err.path, err.py ?? { type: "ValueError", message: err.rule });
      throw err;
    }
    const hash = contentHash({ groups: request.groups, last_epoch: request.last_epoch, spec: bound.canonical });
    // Idempotent: a second open of the same thing keeps the first binding.
    const cached = this.cache.get(hash);
    if (cached) bound = cached;
    else {
      this.cache.set(hash, bound, estimateBytes(bound, request.groups.length), peer);
      this.maxRows.set(bound, Math.min(MAX_WINDOW, Math.floor(MAX_VALUES / bound.groups), maxRowsFor(schedules, bound.groups)));
    }
    this.activity.opened(hash, bound, request.client);

    const reply: OpenedReply = {
      v: PROTOCOL_VERSION,
      id,
      type: "opened",
      hash,
      spec_hash: bound.specHash,
      canonical: bound.canonical,
      kind: bound.kind,
      momentum_key: bound.momentumKey,
      chainable: bound.chainable,
      groups: bound.groups,
      row_end: bound.rowEnd,
      max_rows: this.maxRows.get(bound) ?? MAX_WINDOW,
    };
    if (bound.constructed) {
      reply.first_row = bound.constructed.firstRow;
      reply.group_keys = bound.constructed.groups;
      reply.attrs = bound.constructed.attrs;
    }
    if (bound.kind === "metric") {
      const initial = callSchedule(() => requireMethod(bound.initialState, "initialState").call(bound));
      reply.state = initial.state;
      reply.lr = initial.lr;
      reply.momentum = initial.momentum;
    }
    return reply;
  }

  private lookup(hash: string): Bound {
    const bound = this.cache.get(hash);
    if (!bound) throw new ProtocolError("UNKNOWN_HASH", `no open schedule with hash ${hash.slice(0, 64)}: send open again`, "hash");
    return bound;
  }

  private window(request: WindowRequest, id: number): WindowReply {
    const bound = this.lookup(request.hash);
    if (bound.kind !== "deterministic") throw new ProtocolError("WRONG_KIND", "window on a metric-driven schedule: send metric", "type");
    if (request.origin) {
      const attrs = Object.keys(request.origin.attrs ?? {});
      const unknown = attrs.find((a) => !bound.originAttrs?.includes(a));
      if (unknown !== undefined) {
        throw new ProtocolError("BAD_REQUEST", `origin.attrs.${unknown}: this schedule has no such attribute (it takes ${bound.originAttrs?.join(", ") || "none"})`, `origin.attrs.${unknown}`);
      }
      if (!bound.chainable && attrs.length === 0) throw new ProtocolError("WRONG_KIND", "origin on a schedule that is not chainable", "origin");
      if (request.origin.lr.length !== bound.groups) {
        throw new ProtocolError("BAD_REQUEST", `origin.lr has ${request.origin.lr.length} values for ${bound.groups} groups`, "origin.lr");
      }
    }
    checkValueCount(request.count, bound.groups, "count");
    const maxRows = this.maxRows.get(bound) ?? MAX_WINDOW;
    if (request.count > maxRows) {
      throw new ProtocolError("WINDOW_TOO_LARGE", `count ${request.count} is over this schedule's max_rows ${maxRows} (window_work)`, "count");
    }
    const rows = callSchedule(() => withReplayBudget(this.replaySliceMs, () => bound.rows(request.start, request.count, request.origin)));
    const count = rows.stop ? rows.lr.length / bound.groups : request.count;
    const reply = windowReply(id, request.hash, request.start, count, bound, rows);
    if (bound.cycles) reply.cycle_starts = bound.cycles(request.start, count);
    this.activity.served(request.hash, bound, request.start + count);
    return reply;
  }

  private epoch(request: EpochRequest, id: number): WindowReply {
    const bound = this.lookup(request.hash);
    if (bound.kind !== "deterministic") throw new ProtocolError("WRONG_KIND", "epoch on a metric-driven schedule: send metric", "type");
    if (!bound.epochRows) throw new ProtocolError("WRONG_KIND", "this schedule has no step(epoch) form", "type");
    checkValueCount(request.epochs.length, bound.groups, "epochs");
    const maxRows = this.maxRows.get(bound) ?? MAX_WINDOW;
    if (request.epochs.length > maxRows) {
      throw new ProtocolError("WINDOW_TOO_LARGE", `${request.epochs.length} epochs is over this schedule's max_rows ${maxRows} (window_work)`, "epochs");
    }
    const epochRows = bound.epochRows;
    if (request.lr && request.lr.length !== bound.groups) {
      throw new ProtocolError("BAD_REQUEST", `lr has ${request.lr.length} values for ${bound.groups} groups`, "lr");
    }
    const rows = callSchedule(() => epochRows.call(bound, request.epochs, request.lr));
    return windowReply(id, request.hash, 0, request.epochs.length, bound, rows);
  }

  private metric(request: MetricRequest, id: number): MetricReply {
    const bound = this.lookup(request.hash);
    if (bound.kind !== "metric") throw new ProtocolError("WRONG_KIND", "metric on a deterministic schedule: send window", "type");
    const metricStep = requireMethod(bound.metricStep, "metricStep");
    const result = callSchedule(() => metricStep.call(bound, request.state, request.metric));
    this.activity.stepped(request.hash, bound);
    return { v: PROTOCOL_VERSION, id, type: "metric", state: result.state, lr: result.lr, momentum: result.momentum };
  }

  private replyForError(id: number | null, err: unknown): ErrorReply {
    if (err instanceof ProtocolError) return errorReply(id, err.code, err.message, err.path, err.py);
    this.options.onInternalError?.(err);
    return errorReply(id, "INTERNAL", `internal error: ${messageOf(err)}`);
  }
}

function windowReply(
  id: number,
  hash: string,
  start: number,
  count: number,
  bound: Bound,
  rows: Rows,
): WindowReply {
  const values = count * bound.groups;
  if (rows.lr.length !== values || (rows.momentum !== null && rows.momentum.length !== values)) {
    throw new Error(`schedule returned ${rows.lr.length} values for ${count} rows × ${bound.groups} groups`);
  }
  const reply: WindowReply = {
    v: PROTOCOL_VERSION,
    id,
    type: "window",
    hash,
    start,
    count,
    groups: bound.groups,
    lr: float64ToBin(rows.lr),
    momentum: rows.momentum === null ? null : float64ToBin(rows.momentum),
  };
  if (rows.attrs) reply.attrs = Object.fromEntries(Object.entries(rows.attrs).map(([k, v]) => [k, float64ToBin(v)]));
  if (rows.stop) reply.stop = rows.stop;
  return reply;
}

/**
 * What a bound spec may come to hold, in bytes, for the cache's budget: its
 * canonical form and compiled closures (~8 bytes of heap per JSON byte), and
 * per group, up to one optimizer and scheduler tree per pooled simulation
 * plus the direct-rows one. Tables a spec builds (fractal) count per entry.
 * An estimate: generous, because undercounting is what lets memory grow.
 */
function estimateBytes(bound: Bound, groups: number): number {
  const json = JSON.stringify(bound.canonical) ?? "";
  let schedulers = 0;
  let tables = 0;
  const stack: unknown[] = [bound.canonical];
  while (stack.length > 0) {
    const v = stack.pop();
    if (v === null || typeof v !== "object") continue;
    if (Array.isArray(v)) {
      stack.push(...v);
      continue;
    }
    const map = v as Record<string, unknown>;
    if (typeof map.type === "string") schedulers += 1;
    if (typeof map.horizon === "number") tables += map.horizon * 8 * 3;
    stack.push(...Object.values(map));
  }
  const perSimulation = 512 + groups * (160 + 96 * schedulers);
  return 4096 + json.length * 8 + tables + (SIM_POOL_BOUND + 2) * perSimulation;
}

/** Simulations a bound spec may keep alive (torch/bind.ts's pool and the direct-rows one). */
const SIM_POOL_BOUND = 8;

function checkValueCount(rows: number, groups: number, path: string): void {
  if (rows * groups > MAX_VALUES) {
    throw new ProtocolError("WINDOW_TOO_LARGE", `${rows} rows × ${groups} groups is over max_values ${MAX_VALUES}`, path);
  }
}

/**
 * Runs schedule code for a request. A SpecError there is about the request
 * (e.g. stepping OneCycleLR past total_steps, a corrupt metric state), so it
 * is the client's BAD_REQUEST; anything else stays an internal error.
 */
function callSchedule<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof Refusal) throw new ProtocolError("REFUSED", err.message, err.path || undefined, err.py);
    if (err instanceof SpecError) throw new ProtocolError("BAD_REQUEST", err.message, err.path || undefined);
    if (err instanceof ReplayPending) throw new ProtocolError("REPLAY_PENDING", err.message, "start");
    if (err instanceof ReplayTooFar) throw new ProtocolError("BAD_REQUEST", err.message, "start");
    throw err;
  }
}

function requireMethod<F>(method: F | undefined, name: string): F {
  if (!method) throw new Error(`metric schedule has no ${name}()`);
  return method;
}

export function errorReply(
  id: number | null,
  code: ErrorReply["code"],
  message: string,
  path?: string,
  py?: { type: string; message: string },
): ErrorReply {
  const reply: ErrorReply = { v: PROTOCOL_VERSION, id, type: "error", code, message };
  if (path !== undefined) reply.path = path;
  if (py !== undefined) reply.py = py;
  return reply;
}

/** Integers that msgpackr would write as float64 (over 32 bits) go out as BigInt ints. */
function withWireInts(reply: Reply): unknown {
  const id = reply.id === null ? null : wireInt(reply.id);
  const start = reply.type === "window" ? wireInt(reply.start) : undefined;
  if (id === reply.id && (reply.type !== "window" || start === reply.start)) return reply; // the common case: no copy
  return reply.type === "window" ? { ...reply, id, start } : { ...reply, id };
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
