/**
 * The registry's logic over a Store: publishing validated specs, resolving
 * refs (with the caches that keep serving when the store is away), alias
 * moves, diffs and the run audit. No sockets and no wire format here.
 */
import type { Bound, GroupInit } from "../core/api";
import { SpecError } from "../core/api";
import { checkSpecShape } from "../core/limits";
import { canonicalJson, contentHash } from "../core/canonical";
import { ProtocolError } from "../protocol";
import { Ref, formatRef, isPinned } from "./ref";
import {
  AliasEvent,
  HandleRecord,
  History,
  RegistryError,
  RunEvent,
  RunIdentity,
  RunRecord,
  Store,
  Use,
  Version,
  VersionInfo,
} from "./store";

export type BindFn = (spec: unknown, groups: GroupInit[], lastEpoch?: number) => Bound;

/**
 * The optimizer state a published spec is checked against: one group with
 * momentum, so schedules that cycle momentum (OneCycleLR, CyclicLR, whose
 * defaults need it) publish too. Also diff's default groups.
 */
export const PUBLISH_GROUPS: GroupInit[] = [{ lr: 1.0, momentum: 0.9 }];
/** Refs kept for serving while the store is unavailable, and pinned versions kept in memory. */
const CACHE_ENTRIES = 4096;
/** Rows one diff may compare (the `steps` range of the message). */
export const MAX_DIFF_STEPS = 1 << 20;
const DIFF_CHUNK = 65536;

export interface Resolved {
  ref: string;
  version: Version;
  pinned: boolean;
  /** Answered from this server's memory because the store is unavailable. */
  cached: boolean;
}

export interface DiffResult {
  a: Pick<Version, "name" | "version" | "spec_hash">;
  b: Pick<Version, "name" | "version" | "spec_hash">;
  paths: { path: string; a: unknown; b: unknown }[];
  first_step: number | null;
  max_abs: number;
  max_rel: number;
}

export interface RegistryOptions {
  bind: BindFn;
  /** Unix ms (fixed in the wire vectors). */
  now?: () => number;
  log?: (line: string) => void;
}

export class Registry {
  private readonly now: () => number;
  /** name@N and name@sha256:… → version: never changes, so never stale. */
  private readonly pinned = new BoundedMap<string, Version>(CACHE_ENTRIES);
  /** Last answer per moving ref, served (as cached) while the store is unavailable. */
  private readonly lastKnown = new BoundedMap<string, Version>(CACHE_ENTRIES);
  /** Alias targets, kept only when the store notifies moves. */
  private readonly aliases = new BoundedMap<string, number>(CACHE_ENTRIES);
  /** Handles already written to the store. */
  private readonly savedHandles = new BoundedMap<string, true>(CACHE_ENTRIES * 16);

  constructor(
    readonly store: Store,
    private readonly options: RegistryOptions,
  ) {
    this.now = options.now ?? Date.now;
    store.watch((moved) => {
      if (moved === null) this.aliases.clear();
      else this.aliases.delete(`${moved.name}@${moved.alias}`);
    });
  }

  /** Unix seconds. */
  seconds(): number {
    return this.now() / 1000;
  }

  /**
   * Validates the spec as `open` would, then writes the next version (or finds the equal one).
   * `params` (module specs only) are what the module is probed with here; they are not
   * content: the version holds the node with its own params, and each open gives its params.
   */
  async publish(
    name: string,
    spec: Record<string, unknown>,
    message: string,
    author: string,
    params?: Record<string, unknown>,
  ): Promise<{ version: Version; created: boolean }> {
    checkSpecShape(spec, PUBLISH_GROUPS.length);
    let specHash: string;
    let canonical: Record<string, unknown>;
    if (params === undefined) {
      const bound = this.options.bind(spec, PUBLISH_GROUPS);
      [specHash, canonical] = [bound.specHash, bound.canonical as Record<string, unknown>];
    } else {
      if (spec.type !== "module") throw new ProtocolError("BAD_REQUEST", `params: only a module spec takes params, this spec is of type ${JSON.stringify(spec.type)}`, "params");
      const own = spec.params ?? {};
      const bound = this.options.bind(mergeParams(spec, params, "params"), PUBLISH_GROUPS);
      canonical = { ...(bound.canonical as Record<string, unknown>), params: own };
      specHash = contentHash(canonical);
    }
    const result = await this.store.publish({ name, spec_hash: specHash, canonical, message, author, at: this.seconds() });
    this.remember(result.version);
    return result;
  }

  async resolve(ref: Ref): Promise<Resolved> {
    try {
      const version = await this.lookup(ref);
      if (!isPinned(ref)) this.lastKnown.set(ref.text, version);
      return { ref: ref.text, version, pinned: isPinned(ref), cached: false };
    } catch (err) {
      if (err instanceof RegistryError && err.code === "STORE_UNAVAILABLE") {
        const known = this.lastKnown.get(ref.text);
        if (known) return { ref: ref.text, version: known, pinned: false, cached: true };
      }
      throw err;
    }
  }

  private async lookup(ref: Ref): Promise<Version> {
    const sel = ref.selector;
    switch (sel.kind) {
      case "version":
        return this.versionOf(ref.name, sel.version, ref.text);
      case "hash": {
        const key = formatRef(ref.name, sel);
        const hit = this.pinned.get(key);
        if (hit) return hit;
        const version = await this.store.versionByHash(ref.name, sel.hash);
        if (!version) throw new RegistryError("UNKNOWN_REF", `${ref.text}: no version of ${ref.name} has this content`, "ref");
        this.remember(version);
        return version;
      }
      case "alias": {
        const key = `${ref.name}@${sel.alias}`;
        let target = this.store.notifies ? this.aliases.get(key) : undefined;
        if (target === undefined) {
          const found = await this.store.aliasTarget(ref.name, sel.alias);
          if (found === null) throw new RegistryError("UNKNOWN_REF", `${ref.text}: ${ref.name} has no alias ${sel.alias}`, "ref");
          target = found;
          if (this.store.notifies) this.aliases.set(key, target);
        }
        return this.versionOf(ref.name, target, ref.text);
      }
      case "latest": {
        const version = await this.store.latest(ref.name);
        if (!version) throw new RegistryError("UNKNOWN_REF", `${ref.text}: no versions of ${ref.name}`, "ref");
        this.remember(version);
        return version;
      }
    }
  }

  private async versionOf(name: string, n: number, text: string): Promise<Version> {
    const hit = this.pinned.get(`${name}@${n}`);
    if (hit) return hit;
    const version = await this.store.version(name, n);
    if (!version) throw new RegistryError("UNKNOWN_REF", `${text}: ${name} has no version ${n}`, "ref");
    this.remember(version);
    return version;
  }

  private remember(version: Version): void {
    this.pinned.set(`${version.name}@${version.version}`, version);
    this.pinned.set(`${version.name}@sha256:${version.spec_hash}`, version);
  }

  async alias(name: string, alias: string, to: number, expect: number | null | undefined, who: string, why: string): Promise<AliasEvent> {
    const event = await this.store.moveAlias({ name, alias, to, expect, who, why, at: this.seconds() });
    this.aliases.delete(`${name}@${alias}`);
    this.lastKnown.delete(`${name}@${alias}`);
    return event;
  }

  history(name: string, at?: number): Promise<History> {
    return this.store.history(name, at);
  }

  async runs(q: { ref?: Ref; run?: string }): Promise<RunRecord[]> {
    if (q.run !== undefined) {
      // One run in full: the spec each handle opened (a module's params make it
      // differ from its version's), once per handle.
      const runs = await this.store.runs({ run: q.run });
      for (const r of runs) {
        const seen = new Set<string>();
        for (const u of r.uses) {
          if (seen.has(u.hash)) continue;
          seen.add(u.hash);
          u.spec = (await this.store.handle(u.hash))?.canonical;
        }
      }
      return runs;
    }
    if (!q.ref) return this.store.runs({});
    // A bare name means any version of it; a selector, the version it resolves to.
    if (!q.ref.text.includes("@")) return this.store.runs({ name: q.ref.name });
    const resolved = await this.resolve(q.ref);
    return this.store.runs({ name: resolved.version.name, version: resolved.version.version });
  }

  /** A run's open: the use, and the handle's inputs so any replica can re-open it. */
  async recordUse(run: RunIdentity, use: Use, handle: HandleRecord): Promise<void> {
    await this.store.recordUse(run, use, handle);
    this.savedHandles.set(handle.hash, true);
  }

  async saveHandle(handle: HandleRecord): Promise<void> {
    if (this.savedHandles.get(handle.hash)) return;
    await this.store.saveHandle(handle);
    this.savedHandles.set(handle.hash, true);
  }

  recordEvent(runId: string, event: Omit<RunEvent, "at">): Promise<void> {
    return this.store.recordEvent(runId, { ...event, at: this.seconds() });
  }

  touchRun(runId: string, step: number): Promise<void> {
    return this.store.touchRun(runId, step, this.seconds());
  }

  handle(hash: string): Promise<HandleRecord | null> {
    return this.store.handle(hash);
  }

  /** Where two versions' canonical specs differ, and where their rows part. */
  async diff(a: Ref, b: Ref, steps: number, groups: GroupInit[]): Promise<DiffResult> {
    const [va, vb] = [(await this.resolve(a)).version, (await this.resolve(b)).version];
    return diffVersions(va, vb, steps, groups, this.options.bind);
  }
}

export function diffVersions(va: Version, vb: Version, steps: number, groups: GroupInit[], bind: BindFn): DiffResult {
  const paths: DiffResult["paths"] = [];
  jsonDiff(va.canonical, vb.canonical, "", paths);
  const boundA = bindFor(va, groups, bind, "a");
  const boundB = bindFor(vb, groups, bind, "b");
  let first: number | null = null;
  let maxAbs = 0;
  let maxRel = 0;
  const compare = (x: ArrayLike<number>, y: ArrayLike<number>, n: number, start: number, g: number) => {
    for (let i = 0; i < n; i++) {
      if (x[i] === y[i] || (Number.isNaN(x[i]) && Number.isNaN(y[i]))) continue;
      const row = start + Math.floor(i / g);
      if (first === null || row < first) first = row;
      const abs = Math.abs(x[i] - y[i]);
      if (!Number.isFinite(abs)) continue;
      const scale = Math.max(Math.abs(x[i]), Math.abs(y[i]));
      maxAbs = Math.max(maxAbs, abs);
      if (scale > 0) maxRel = Math.max(maxRel, abs / scale);
    }
  };
  if (boundA.kind === "deterministic" && boundB.kind === "deterministic") {
    const g = boundA.groups;
    for (let start = 0; start < steps; start += DIFF_CHUNK) {
      const count = Math.min(DIFF_CHUNK, steps - start);
      const ra = boundA.rows(start, count);
      const rb = boundB.rows(start, count);
      const n = Math.min(ra.lr.length, rb.lr.length);
      compare(ra.lr, rb.lr, n, start, g);
      if (ra.momentum && rb.momentum) compare(ra.momentum, rb.momentum, n, start, g);
      // One stops (torch raises) before the other: the rows part there.
      if (ra.lr.length !== rb.lr.length) {
        const row = start + n / g;
        if (first === null || row < first) first = row;
      }
      if (ra.stop || rb.stop) break;
    }
  } else if (canonicalJson(va.canonical) !== canonicalJson(vb.canonical) && first === null) {
    // Metric-driven rows depend on the metrics a run feeds: only the specs compare.
    first = boundA.kind !== boundB.kind ? 0 : null;
  }
  return {
    a: { name: va.name, version: va.version, spec_hash: va.spec_hash },
    b: { name: vb.name, version: vb.version, spec_hash: vb.spec_hash },
    paths,
    first_step: first,
    max_abs: maxAbs,
    max_rel: maxRel,
  };
}

function bindFor(v: Version, groups: GroupInit[], bind: BindFn, side: string): Bound {
  try {
    return bind(v.canonical, groups);
  } catch (err) {
    if (err instanceof SpecError) throw new SpecError(`${side}.${err.path}`.replace(/\.$/, ""), err.rule, err.py);
    throw err;
  }
}

/** JSON paths where two values differ: `schedulers[1].T_max`; a side that lacks the path is undefined. */
export function jsonDiff(a: unknown, b: unknown, path: string, out: DiffResult["paths"]): void {
  const isMap = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
  if (isMap(a) && isMap(b)) {
    for (const key of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
      jsonDiff(a[key], b[key], path ? `${path}.${key}` : key, out);
    }
    return;
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    for (let i = 0; i < Math.max(a.length, b.length); i++) jsonDiff(a[i], b[i], `${path}[${i}]`, out);
    return;
  }
  if (a === undefined && b === undefined) return;
  if (a !== undefined && b !== undefined && canonicalJson(a) === canonicalJson(b)) return;
  out.push({ path: path || "$", a: a ?? null, b: b ?? null });
}

export function versionInfo(v: Version): VersionInfo {
  return { name: v.name, version: v.version, spec_hash: v.spec_hash, message: v.message, author: v.author, created_at: v.created_at };
}

/** A Map that forgets its oldest entries past a size. */
class BoundedMap<K, V> {
  private readonly map = new Map<K, V>();
  constructor(private readonly max: number) {}
  get(key: K): V | undefined {
    return this.map.get(key);
  }
  set(key: K, value: V): void {
    this.map.delete(key);
    this.map.set(key, value);
    if (this.map.size > this.max) this.map.delete(this.map.keys().next().value as K);
  }
  delete(key: K): void {
    this.map.delete(key);
  }
  clear(): void {
    this.map.clear();
  }
}

/**
 * A module spec with `params` laid over its own (the open's params over a
 * published version's, the probe's at publish). `field` names the params'
 * field in the request for the error.
 */
export function mergeParams(spec: Record<string, unknown>, params: Record<string, unknown>, field: string): Record<string, unknown> {
  const own = spec.params;
  if (own !== undefined && (own === null || typeof own !== "object" || Array.isArray(own))) return spec; // bind words that error
  return { ...spec, params: { ...(own as Record<string, unknown> | undefined), ...params } };
}
