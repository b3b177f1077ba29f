/**
 * The registry's messages (proto/PROTOCOL.md, "Registry"): readers that
 * name the field they refuse, and the reply shapes.
 */
import type { GroupInit } from "../core/api";
import { ProtocolError, isPlainMap } from "../protocol";
import { Ref, RefError, parseAlias, parseName, parseRef } from "./ref";
import { MAX_DIFF_STEPS } from "./registry";
import { RegistryError, RunIdentity } from "./store";

export const REGISTRY_REQUEST_TYPES = ["publish", "alias", "resolve", "history", "diff", "runs"] as const;
export type RegistryRequestType = (typeof REGISTRY_REQUEST_TYPES)[number];
export const ADMIN_TYPES: readonly string[] = ["publish", "alias"];
export const REGISTRY_REPLY_TYPES = ["published", "aliased", "resolved", "history", "diff", "runs"] as const;
export const REGISTRY_CAPABILITY = "registry";
/** Error codes the registry adds (proto/PROTOCOL.md, "Registry errors"). */
export const REGISTRY_ERROR_CODES = ["BAD_REF", "UNKNOWN_REF", "ALIAS_CONFLICT", "FORBIDDEN", "STORE_UNAVAILABLE"] as const;

const MAX_TEXT = 4096;
const MAX_RUN_ID = 128;
const MAX_RUN_TEXT = 256;

export interface PublishRequest {
  type: "publish";
  name: string;
  spec: Record<string, unknown>;
  message: string;
  author: string;
  /** a module spec's probe params (not stored) */
  params?: Record<string, unknown>;
}
export interface AliasRequest {
  type: "alias";
  name: string;
  alias: string;
  version: number;
  expect?: number | null;
  who: string;
  why: string;
}
export interface ResolveRequest {
  type: "resolve";
  ref: Ref;
}
export interface HistoryRequest {
  type: "history";
  name: string;
  at?: number;
}
export interface DiffRequest {
  type: "diff";
  a: Ref;
  b: Ref;
  steps: number;
  groups?: unknown[];
}
export interface RunsRequest {
  type: "runs";
  ref?: Ref;
  run?: string;
}
export type RegistryRequest = PublishRequest | AliasRequest | ResolveRequest | HistoryRequest | DiffRequest | RunsRequest;

function bad(path: string, what: string): never {
  throw new ProtocolError("BAD_REQUEST", `${path}: ${what}`, path);
}

/** A RefError becomes BAD_REF at its path. */
function refField<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof RefError) throw new RegistryError("BAD_REF", err.message, err.path);
    throw err;
  }
}

function optText(body: Record<string, unknown>, key: string, max = MAX_TEXT): string | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string" || value.length > max) bad(key, `expected a string of at most ${max} characters`);
  return value;
}

function intAtLeast(value: unknown, path: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min || value > max) {
    bad(path, max === Number.MAX_SAFE_INTEGER ? `expected an integer >= ${min}` : `expected an integer in [${min}, ${max}]`);
  }
  return value;
}

export function readRegistryRequest(body: Record<string, unknown>): RegistryRequest {
  switch (body.type as RegistryRequestType) {
    case "publish": {
      const name = refField(() => parseName(body.name, "name"));
      if (!isPlainMap(body.spec)) bad("spec", "expected a map");
      const request: PublishRequest = { type: "publish", name, spec: body.spec, message: optText(body, "message") ?? "", author: optText(body, "author", MAX_RUN_TEXT) ?? "" };
      if (body.params !== undefined && body.params !== null) request.params = readParams(body.params, "params");
      return request;
    }
    case "alias": {
      const name = refField(() => parseName(body.name, "name"));
      const alias = refField(() => parseAlias(body.alias, "alias"));
      const version = intAtLeast(body.version, "version", 1);
      const request: AliasRequest = { type: "alias", name, alias, version, who: optText(body, "who", MAX_RUN_TEXT) ?? "", why: optText(body, "why") ?? "" };
      // Present and nil: the alias must not exist yet; absent: unconditional.
      if ("expect" in body && body.expect !== undefined) request.expect = body.expect === null ? null : intAtLeast(body.expect, "expect", 1);
      request.who = optText(body, "who", MAX_RUN_TEXT) ?? "";
      return request;
    }
    case "resolve":
      return { type: "resolve", ref: refField(() => parseRef(body.ref, "ref")) };
    case "history": {
      const name = refField(() => parseName(body.name, "name"));
      const request: HistoryRequest = { type: "history", name };
      if (body.at !== undefined && body.at !== null) {
        if (typeof body.at !== "number" || !Number.isFinite(body.at)) bad("at", "expected Unix seconds (a finite number)");
        request.at = body.at;
      }
      return request;
    }
    case "diff": {
      const a = refField(() => parseRef(body.a, "a"));
      const b = refField(() => parseRef(body.b, "b"));
      const steps = intAtLeast(body.steps, "steps", 1, MAX_DIFF_STEPS);
      const request: DiffRequest = { type: "diff", a, b, steps };
      if (body.groups !== undefined && body.groups !== null) {
        if (!Array.isArray(body.groups) || body.groups.length === 0 || body.groups.length > 64) bad("groups", "expected 1 to 64 groups as in open");
        request.groups = body.groups;
      }
      return request;
    }
    case "runs": {
      const request: RunsRequest = { type: "runs" };
      if (body.ref !== undefined && body.ref !== null) request.ref = refField(() => parseRef(body.ref, "ref"));
      if (body.run !== undefined && body.run !== null) request.run = readRunId(body.run, "run");
      return request;
    }
  }
  throw new ProtocolError("UNKNOWN_TYPE", `unknown message type ${String(body.type)}`, "type");
}

export function readRunId(value: unknown, path: string): string {
  if (typeof value !== "string" || value.length === 0 || value.length > MAX_RUN_ID) bad(path, `expected a run id: a string of 1 to ${MAX_RUN_ID} characters`);
  return value;
}

/** `open.run`: who is training. */
export function readRun(value: unknown): RunIdentity & { step?: number } {
  if (!isPlainMap(value)) bad("run", "expected a map {id, name?, rank?, world_size?, host?, pid?, step?}");
  const run: RunIdentity & { step?: number } = { id: readRunId(value.id, "run.id") };
  const text = (key: "name" | "host") => {
    const v = value[key];
    if (v === undefined || v === null) return;
    if (typeof v !== "string" || v.length > MAX_RUN_TEXT) bad(`run.${key}`, `expected a string of at most ${MAX_RUN_TEXT} characters`);
    run[key] = v;
  };
  const int = (key: "rank" | "world_size" | "pid" | "step", min: number) => {
    const v = value[key];
    if (v === undefined || v === null) return;
    run[key] = intAtLeast(v, `run.${key}`, min);
  };
  text("name");
  int("rank", 0);
  int("world_size", 1);
  text("host");
  int("pid", 0);
  int("step", 0);
  return run;
}

/** diff's groups, read with open's own rules (the same normalization). */
export type DiffGroups = GroupInit[];

/** A module's params in a request: a map (bind checks what is in it). */
export function readParams(value: unknown, path: string): Record<string, unknown> {
  if (!isPlainMap(value)) bad(path, "expected a map");
  return value as Record<string, unknown>;
}
