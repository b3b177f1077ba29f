/**
 * The registry in front of the Handler: registry messages, `open` by ref
 * with a run, run events on window/rebase/epoch/metric, and re-opening a
 * handle this server never saw from the store. Everything else goes to
 * the Handler untouched (and synchronously: the fast path stays the same).
 */
import { redactRun } from "./labels";
import { SpecError } from "../core/api";
import { checkSpecShape } from "../core/limits";
import {
  ErrorReply,
  MAX_REQUEST_BYTES,
  PROTOCOL_VERSION,
  ProtocolError,
  Reply,
  decodeBody,
  isPlainMap,
  readId,
  readRequest,
} from "../protocol";
import { ADMIN_TYPES, REGISTRY_CAPABILITY, REGISTRY_REQUEST_TYPES, RegistryRequest, readParams, readRegistryRequest, readRun, readRunId } from "../registry/messages";
import { RefError, parseRef } from "../registry/ref";
import { PUBLISH_GROUPS, Registry, Resolved, mergeParams } from "../registry/registry";
import { RegistryError, RunRecord } from "../registry/store";
import { Handled, Handler, errorReply } from "./handler";

export type Encoded = Handled & { bytes: Buffer };

export interface RegistryFrontOptions {
  handler: Handler;
  registry: Registry | null;
  /** This endpoint answers `publish` and `alias` (the admin endpoint, ipc://, or --dev-admin). */
  admin: boolean;
  log?: (line: string) => void;
}

const RUN_EVENT_TYPES = new Set(["window", "rebase", "epoch", "metric"]);
type Body = Record<string, unknown>;
/** Registry replies are plain maps the Handler encodes like its own. */
type AnyReply = Reply | (Record<string, unknown> & { v: number; id: number | null; type: string });

export class RegistryFront {
  private readonly handler: Handler;
  private readonly registry: Registry | null;
  private readonly log: (line: string) => void;

  constructor(private readonly options: RegistryFrontOptions) {
    this.handler = options.handler;
    this.registry = options.registry;
    this.log = options.log ?? (() => {});
  }

  /** Raw body → encoded reply; a promise only when the store is involved. Never rejects. */
  handleBytes(bytes: Uint8Array, peer = "", authenticated = true): Encoded | Promise<Encoded> {
    if (bytes.byteLength > MAX_REQUEST_BYTES) return this.handler.handleBytes(bytes, peer, authenticated);
    let body: unknown;
    try {
      body = decodeBody(bytes);
    } catch {
      return this.handler.handleBytes(bytes, peer, authenticated); // the Handler words the BAD_FRAME
    }
    return this.handleBody(body, peer, authenticated);
  }

  /** Decoded request → reply (tests and the vector generator). */
  async handle(body: unknown, peer = ""): Promise<AnyReply> {
    return (await this.handleBody(body, peer)).reply as AnyReply;
  }

  private handleBody(body: unknown, peer: string, authenticated = true): Encoded | Promise<Encoded> {
    if (!isPlainMap(body)) return this.encoded(this.handler.handleDecoded(body, peer, authenticated));
    const type = body.type;
    if (typeof type === "string" && (REGISTRY_REQUEST_TYPES as readonly string[]).includes(type)) {
      return this.counted(this.registryMessage(body, type, authenticated));
    }
    if (type === "open" && (body.ref !== undefined || (this.registry && body.run !== undefined))) return this.counted(this.open(body, peer));
    const handled = this.handler.handleDecoded(body, peer, authenticated);
    if (!this.registry) return this.encoded(handled);
    const reply = handled.reply;
    if (reply.type === "hello") {
      reply.capabilities = [...reply.capabilities, REGISTRY_CAPABILITY];
      (reply as unknown as Body).admin = this.options.admin;
    }
    if (typeof type === "string" && RUN_EVENT_TYPES.has(type)) {
      if (reply.type === "error" && reply.code === "UNKNOWN_HASH") return this.reopened(body, peer, handled);
      if (body.run !== undefined && reply.type !== "error") return this.recorded(body, handled);
    }
    return this.encoded(handled);
  }

  private encoded(handled: Handled): Encoded {
    return { ...handled, bytes: this.handler.encode(handled.reply) };
  }

  private async counted(reply: Promise<AnyReply>): Promise<Encoded> {
    const r = await reply;
    this.handler.count(r as Reply);
    return { reply: r as Reply, bytes: this.handler.encode(r as Reply) };
  }

  // ---- registry messages ----

  private async registryMessage(body: Body, type: string, authenticated = true): Promise<AnyReply> {
    const id = readId(body);
    try {
      checkHead(body);
      if (!this.registry) throw new ProtocolError("UNKNOWN_TYPE", `${type}: this server has no registry (lrbridge serve --registry)`, "type");
      if (ADMIN_TYPES.includes(type) && !this.options.admin) {
        throw new RegistryError("FORBIDDEN", `${type} is refused on this endpoint: send it to the admin endpoint (lrbridge serve --admin ENDPOINT)`, "type");
      }
      const request = readRegistryRequest(body);
      const reply = await this.dispatch(this.registry, request);
      if (reply.type === "runs" && !authenticated) redactRuns(reply);
      return { v: PROTOCOL_VERSION, id: id as number, ...reply };
    } catch (err) {
      return this.errorFor(id, err);
    }
  }

  private async dispatch(registry: Registry, request: RegistryRequest): Promise<Body & { type: string }> {
    switch (request.type) {
      case "publish": {
        const { version, created } = await registry.publish(request.name, request.spec, request.message, request.author, request.params);
        return { type: "published", name: version.name, version: version.version, spec_hash: version.spec_hash, canonical: version.canonical, created };
      }
      case "alias": {
        const e = await registry.alias(request.name, request.alias, request.version, request.expect, request.who, request.why);
        return { type: "aliased", name: request.name, alias: e.alias, from: e.from, to: e.to, at: e.at };
      }
      case "resolve": {
        const r = await registry.resolve(request.ref);
        const v = r.version;
        const reply: Body & { type: string } = {
          type: "resolved",
          ref: r.ref,
          name: v.name,
          version: v.version,
          spec_hash: v.spec_hash,
          canonical: v.canonical,
          message: v.message,
          author: v.author,
          created_at: v.created_at,
          pinned: r.pinned,
        };
        if (r.cached) reply.cached = true;
        return reply;
      }
      case "history": {
        const h = await registry.history(request.name, request.at);
        return { type: "history", name: request.name, versions: h.versions, aliases: h.aliases, events: h.events };
      }
      case "diff": {
        const groups = request.groups === undefined ? PUBLISH_GROUPS : readGroups(request.groups);
        const d = await registry.diff(request.a, request.b, request.steps, groups);
        return { type: "diff", ...d };
      }
      case "runs": {
        const runs = await registry.runs({ ref: request.ref, run: request.run });
        return { type: "runs", runs: runs.map((r) => runOnWire(r, request.run !== undefined)) };
      }
    }
  }

  // ---- open by ref, with a run ----

  private async open(body: Body, peer: string): Promise<AnyReply> {
    const id = readId(body);
    const registry = this.registry;
    let resolved: Resolved | undefined;
    let run: ReturnType<typeof readRun> | undefined;
    let params: Record<string, unknown> | undefined;
    try {
      checkHead(body);
      if (body.ref !== undefined) {
        if (body.spec !== undefined) throw new ProtocolError("BAD_REQUEST", "ref: open takes exactly one of spec and ref", "ref");
        const ref = parseRef(body.ref, "ref");
        // The other fields are checked before the store is asked.
        readRequest({ ...body, spec: {} });
        if (body.run !== undefined && body.run !== null) run = readRun(body.run);
        if (!registry) throw new ProtocolError("BAD_REQUEST", "ref: this server has no registry (lrbridge serve --registry)", "ref");
        if (body.params !== undefined) params = readParams(body.params, "params");
        resolved = await registry.resolve(ref);
        if (params && (resolved.version.canonical as Body).type !== "module") {
          const v = `${resolved.version.name}@${resolved.version.version}`;
          const named = body.ref === v ? v : `${body.ref} (${v})`;
          throw new ProtocolError("BAD_REQUEST", `params: ${named} is not a module, so it takes no params`, "params");
        }
      } else {
        if (body.params !== undefined) throw new ProtocolError("BAD_REQUEST", "params: go with a ref (a module spec carries its own params)", "params");
        readRequest(body);
        if (body.run !== null) run = readRun(body.run);
      }
    } catch (err) {
      return this.errorFor(id, err);
    }
    let spec = resolved ? resolved.version.canonical : body.spec;
    if (resolved && params) spec = mergeParams(resolved.version.canonical as Body, params, "params");
    const openBody: Body = { ...body, spec };
    delete openBody.ref;
    delete openBody.params;
    delete openBody.run;
    const reply = this.handler.handleDecoded(openBody, peer).reply;
    if (reply.type !== "opened" || !registry) return reply;
    if (resolved) {
      const r: Body = { ref: resolved.ref, name: resolved.version.name, version: resolved.version.version, spec_hash: resolved.version.spec_hash };
      if (resolved.cached) r.cached = true;
      (reply as unknown as Body).resolved = r;
      this.handler.runs.resolved?.(resolved.ref, reply.hash, resolved.version.version);
    }
    const lastEpoch = typeof body.last_epoch === "number" ? body.last_epoch : -1;
    const handle = { hash: reply.hash, canonical: reply.canonical, groups: body.groups as unknown[], last_epoch: lastEpoch };
    try {
      if (run) {
        const { step, ...who } = run;
        await registry.recordUse(
          who,
          {
            ref: resolved?.ref ?? "",
            name: resolved?.version.name ?? "",
            version: resolved?.version.version ?? 0,
            spec_hash: reply.spec_hash,
            step: step ?? reply.first_row ?? lastEpoch + 1,
            at: registry.seconds(),
            hash: reply.hash,
            groups: handle.groups,
            last_epoch: lastEpoch,
          },
          handle,
        );
      } else await registry.saveHandle(handle);
    } catch (err) {
      this.log(`${new Date().toISOString()} registry: not recorded: ${messageOf(err)}`);
    }
    return reply;
  }

  // ---- windows: run events, and handles from the store ----

  private async reopened(body: Body, peer: string, first: Handled): Promise<Encoded> {
    const hash = body.hash as string;
    const record = await this.registry!.handle(hash).catch(() => null);
    if (!record) return this.encoded(first);
    const opened = this.handler.handle({ v: PROTOCOL_VERSION, id: 0, type: "open", spec: record.canonical, groups: record.groups, last_epoch: record.last_epoch });
    if (opened.type !== "opened" || opened.hash !== hash) {
      this.log(`${new Date().toISOString()} registry: stored handle ${hash.slice(0, 12)} re-opens as ${opened.type === "opened" ? opened.hash.slice(0, 12) : opened.type}`);
      return this.encoded(first);
    }
    // One line per handle a replica serves without having opened it: how failover is seen in logs.
    this.log(`${new Date().toISOString()} registry: handle ${hash.slice(0, 12)} loaded from the store peer=${peer}`);
    const handled = this.handler.handleDecoded(body, peer);
    if (body.run !== undefined && handled.reply.type !== "error") return this.recorded(body, handled);
    return this.encoded(handled);
  }

  private async recorded(body: Body, handled: Handled): Promise<Encoded> {
    let runId: string;
    try {
      runId = readRunId(body.run, "run");
    } catch (err) {
      const reply = this.errorFor(readId(body), err);
      return { reply, bytes: this.handler.encode(reply) };
    }
    const registry = this.registry!;
    const request = handled.request;
    try {
      if (request?.type === "window" || request?.type === "rebase") {
        if (request.origin) await registry.recordEvent(runId, { kind: "origin", step: request.origin.step, data: { lr: request.origin.lr } });
        else await registry.touchRun(runId, request.start);
      } else if (request?.type === "epoch") {
        const last = request.epochs[request.epochs.length - 1];
        await registry.recordEvent(runId, { kind: "epoch", step: Math.max(0, Math.floor(last)), data: request.lr ? { epochs: request.epochs, lr: request.lr } : { epochs: request.epochs } });
      } else if (request?.type === "metric") {
        const state = request.state as Body;
        const step = typeof state.last_epoch === "number" ? state.last_epoch : typeof state.step === "number" ? state.step : 0;
        const data: Body = { metric: jsonMetric(request.metric) };
        if (Array.isArray(state.lr)) data.lr = state.lr;
        await registry.recordEvent(runId, { kind: "metric", step, data });
      }
    } catch (err) {
      this.log(`${new Date().toISOString()} registry: run ${runId} not recorded: ${messageOf(err)}`);
    }
    return this.encoded(handled);
  }

  private errorFor(id: number | null, err: unknown): ErrorReply {
    if (err instanceof ProtocolError) return errorReply(id, err.code, err.message, err.path, err.py);
    if (err instanceof RegistryError) return errorReply(id, err.code, err.message, err.path);
    if (err instanceof RefError) return errorReply(id, "BAD_REF", err.message, err.path);
    if (err instanceof SpecError) return errorReply(id, "SPEC_INVALID", err.message, err.path, err.py ?? { type: "ValueError", message: err.rule });
    this.log(`${new Date().toISOString()} internal error: ${err instanceof Error ? err.stack : String(err)}`);
    return errorReply(id, "INTERNAL", `internal error: ${messageOf(err)}`);
  }
}

/** v and id, as every message checks them first. */
function checkHead(body: Body): void {
  if (body.v !== PROTOCOL_VERSION) {
    throw new ProtocolError("BAD_VERSION", `protocol version ${String(body.v)} is not spoken here (this server speaks ${PROTOCOL_VERSION})`, "v");
  }
  if (readId(body) === null) throw new ProtocolError("BAD_REQUEST", "id: expected an integer >= 0", "id");
}

/** diff's groups, read by open's own reader (same rules, same paths). */
function readGroups(groups: unknown[]) {
  const open = readRequest({ v: PROTOCOL_VERSION, id: 0, type: "open", spec: {}, groups });
  if (open.type !== "open") throw new Error("unreachable");
  checkSpecShape({}, open.groups.length);
  return open.groups;
}

function runOnWire(r: RunRecord, full: boolean): Body {
  const uses = r.uses.map((u) => {
    const use: Body = { ref: u.ref, name: u.name, version: u.version, spec_hash: u.spec_hash, step: u.step, at: u.at };
    if (full) Object.assign(use, { groups: u.groups, last_epoch: u.last_epoch });
    if (full && u.spec !== undefined) use.spec = u.spec;
    return use;
  });
  const out: Body = {
    id: r.id,
    name: r.name,
    rank: r.rank,
    world_size: r.world_size,
    host: r.host,
    pid: r.pid,
    uses,
    uses_total: r.uses_total,
    last_step: r.last_step,
    first_seen: r.first_seen,
    last_seen: r.last_seen,
  };
  if (full) out.events = r.events ?? [];
  return out;
}

/** JSON has no NaN or infinities: they are stored as Python spells them. */
function jsonMetric(x: number): number | string {
  if (Number.isFinite(x)) return x;
  return Number.isNaN(x) ? "nan" : x > 0 ? "inf" : "-inf";
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Hosts, pids and scripts go only to peers of a CURVE or ipc endpoint (as in `stats`). */
function redactRuns(reply: Body): void {
  if (Array.isArray(reply.runs)) reply.runs = (reply.runs as Body[]).map(redactRun);
}
