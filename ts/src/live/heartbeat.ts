/**
 * `heartbeat`: where a run really is (its step, last lr and momentum), sent
 * by the client at most once a second, fire-and-forget: the server never
 * answers it, so it can share any socket without taking a reply slot.
 */
import { ProtocolError } from "../protocol/errors";

export interface RunIdentity {
  id: string;
  name: string;
  host?: string;
  pid?: number;
  rank?: number;
  world_size?: number;
}

export interface HeartbeatRequest {
  type: "heartbeat";
  run: RunIdentity;
  /** The handle the run steps through (`opened.hash`). */
  hash: string;
  spec_hash: string;
  /** The run's real step: rows written so far (the scheduler's last_epoch). */
  step: number;
  lr: number[];
  momentum: number[] | null;
  /** Steps the run means to take, when the client knows it. */
  total: number | null;
  state: "running" | "finished";
  /** The registry ref the schedule was opened by, if any. */
  ref?: string;
  /** Metric-driven schedules: where the lr changed since the last heartbeat. */
  changes?: { step: number; lr: number[] }[];
}

/** Per heartbeat: enough for one value per group of a large model, small enough to be cheap. */
export const MAX_HEARTBEAT_GROUPS = 64;
const MAX_TEXT = 256;
export const MAX_HEARTBEAT_CHANGES = 16;

function bad(path: string, what: string): never {
  throw new ProtocolError("BAD_REQUEST", `${path}: ${what}`, path);
}

function isMap(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
}

function text(value: unknown, path: string, max = MAX_TEXT): string {
  if (typeof value !== "string" || value.length === 0 || value.length > max) bad(path, `expected a string of 1 to ${max} characters`);
  return value;
}

function int(value: unknown, path: string, min: number): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min) bad(path, `expected an integer >= ${min}`);
  return value;
}

function floats(value: unknown, path: string): number[] {
  if (!Array.isArray(value) || value.length === 0 || value.length > MAX_HEARTBEAT_GROUPS) {
    bad(path, `expected a list of 1 to ${MAX_HEARTBEAT_GROUPS} numbers`);
  }
  return value.map((x, i) => {
    if (typeof x !== "number" || !Number.isFinite(x)) bad(`${path}[${i}]`, "expected a finite number");
    return x;
  });
}

function readRun(value: unknown): RunIdentity {
  if (!isMap(value)) bad("run", "expected a map {id, name, ...}");
  const run: RunIdentity = { id: text(value.id, "run.id", 128), name: text(value.name, "run.name") };
  if (value.host !== undefined && value.host !== null) run.host = text(value.host, "run.host");
  if (value.pid !== undefined && value.pid !== null) run.pid = int(value.pid, "run.pid", 0);
  if (value.rank !== undefined && value.rank !== null) run.rank = int(value.rank, "run.rank", 0);
  if (value.world_size !== undefined && value.world_size !== null) run.world_size = int(value.world_size, "run.world_size", 1);
  return run;
}

export function readHeartbeat(body: Record<string, unknown>): HeartbeatRequest {
  const state = body.state ?? "running";
  if (state !== "running" && state !== "finished") bad("state", 'expected "running" or "finished"');
  const request: HeartbeatRequest = {
    type: "heartbeat",
    run: readRun(body.run),
    hash: text(body.hash, "hash", 128),
    spec_hash: text(body.spec_hash, "spec_hash", 128),
    step: int(body.step, "step", 0),
    lr: floats(body.lr, "lr"),
    momentum: body.momentum === undefined || body.momentum === null ? null : floats(body.momentum, "momentum"),
    total: body.total === undefined || body.total === null ? null : int(body.total, "total", 0),
    state,
  };
  if (body.ref !== undefined && body.ref !== null) request.ref = text(body.ref, "ref");
  if (body.changes !== undefined && body.changes !== null) {
    const changes = body.changes;
    if (!Array.isArray(changes) || changes.length > MAX_HEARTBEAT_CHANGES) bad("changes", `expected a list of at most ${MAX_HEARTBEAT_CHANGES} changes`);
    request.changes = changes.map((c, i) => {
      if (!isMap(c)) bad(`changes[${i}]`, "expected a map {step, lr}");
      return { step: int(c.step, `changes[${i}].step`, 0), lr: floats(c.lr, `changes[${i}].lr`) };
    });
  }
  return request;
}
