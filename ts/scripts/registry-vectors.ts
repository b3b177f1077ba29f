/**
 * The registry's wire vectors: each answered by a server with a fresh,
 * empty store and the vectors' clock, on an admin endpoint or a tcp serving
 * one (`registry.admin`), after its `setup` requests.
 */
import { encodeBody, decodeBody, toJsonable } from "../src/protocol";
import { bind } from "../src/bind";
import { Handler } from "../src/server/handler";
import { RegistryFront } from "../src/server/registry_handler";
import { Registry } from "../src/registry/registry";
import { SqliteStore } from "../src/registry/sqlite";
import { VECTOR_CLOCK } from "./vector_clock";
import { libraryVersion, loadSandbox } from "../src/modules";

type Msg = Record<string, unknown>;

export interface RegistryCase {
  name: string;
  about: string;
  admin: boolean;
  setup?: Msg[];
  request: Msg;
}

/** A front on a fresh in-memory store, as the vectors and their test use it. */
export async function vectorFront(admin: boolean): Promise<{ front: RegistryFront; close: () => Promise<void> }> {
  const store = await SqliteStore.open(":memory:");
  const front = new RegistryFront({ handler: new Handler({ bind, now: VECTOR_CLOCK }), registry: new Registry(store, { bind, now: VECTOR_CLOCK }), admin });
  return { front, close: () => store.close() };
}

const COSINE = { type: "CosineAnnealingLR", T_max: 100 };
const SHORTER = { type: "CosineAnnealingLR", T_max: 80 };
const GROUPS = [{ lr: 0.1, momentum: 0.9 }];
const RUN = { id: "4f9c2a7e0b1d4e6f8a3b5c7d9e1f2a3b", name: "host:4242 train.py", rank: 0, world_size: 2, host: "host", pid: 4242 };
const publish = (id: number, spec: Msg, message = "first cosine"): Msg => ({ v: 2, id, type: "publish", name: "team/cosine", spec, message, author: "ann" });
const alias = (id: number, version: number, extra: Msg = {}): Msg => ({ v: 2, id, type: "alias", name: "team/cosine", alias: "prod", version, ...extra });
const openRef = (id: number): Msg => ({ v: 2, id, type: "open", ref: "team/cosine@prod", groups: GROUPS, run: RUN });
/** What `lrbridge publish team/warm warm.ts` sends: the compiled module, without params. */
const WARM_JS = [
  '"use strict";',
  'Object.defineProperty(exports, "__esModule", { value: true });',
  'const schedules_1 = require("lrbridge/schedules");',
  "exports.default = (p) => (0, schedules_1.join)([schedules_1.warmup.linear(p.warm), (0, schedules_1.cosine)(p.total - p.warm)], [p.warm]);",
  "",
].join("\n");
const WARM = (): Msg => ({ type: "module", code: WARM_JS, library: libraryVersion() });
const publishModule = (id: number): Msg => ({ v: 2, id, type: "publish", name: "team/warm", spec: WARM(), params: { total: 100, warm: 10 }, message: "warmup then cosine", author: "ann" });

export async function registryCases(): Promise<RegistryCase[]> {
  await loadSandbox(); // the module vectors bind a module
  const hash = await handleHash();
  return [
    { name: "hello_registry", about: "handshake with a server that has a registry: capability `registry`, and whether this endpoint takes admin messages", admin: false, request: { v: 2, id: 1, type: "hello", client: "lrbridge-python/0.1" } },
    { name: "publish", about: "publish a spec as the next version of a name (admin)", admin: true, request: publish(2, COSINE) },
    { name: "publish_existing", about: "publishing content equal to an existing version returns that version (created: false)", admin: true, setup: [publish(1, COSINE)], request: publish(2, { T_max: 100, type: "CosineAnnealingLR", eta_min: 0.0 }) },
    { name: "alias", about: "move an alias unconditionally (admin)", admin: true, setup: [publish(1, COSINE)], request: alias(2, 1, { who: "ann", why: "launch" }) },
    { name: "alias_expect", about: "move an alias with compare-and-set: it must point at `expect` now", admin: true, setup: [publish(1, COSINE), publish(2, SHORTER, "shorter"), alias(3, 1)], request: alias(4, 2, { expect: 1, who: "bob", why: "v2 is better" }) },
    { name: "alias_expect_nil", about: "create an alias that must not exist yet (expect: nil)", admin: true, setup: [publish(1, COSINE)], request: alias(2, 1, { expect: null }) },
    { name: "resolve", about: "resolve a ref (here an alias) to its version", admin: false, setup: [publish(1, COSINE), alias(2, 1)], request: { v: 2, id: 3, type: "resolve", ref: "team/cosine@prod" } },
    { name: "history", about: "a name's versions, aliases and alias events, oldest first", admin: false, setup: [publish(1, COSINE), publish(2, SHORTER, "shorter"), alias(3, 1), alias(4, 2)], request: { v: 2, id: 5, type: "history", name: "team/cosine" } },
    { name: "history_at", about: "where each alias pointed at a time (Unix seconds)", admin: false, setup: [publish(1, COSINE), alias(2, 1)], request: { v: 2, id: 3, type: "history", name: "team/cosine", at: 1767225599.5 } },
    { name: "diff", about: "the changed paths of two versions' canonical specs and where their rows part", admin: false, setup: [publish(1, COSINE), publish(2, SHORTER, "shorter")], request: { v: 2, id: 3, type: "diff", a: "team/cosine@1", b: "team/cosine@2", steps: 100 } },
    { name: "diff_groups", about: "diff with the optimizer state of open", admin: false, setup: [publish(1, COSINE), publish(2, SHORTER, "shorter")], request: { v: 2, id: 3, type: "diff", a: "team/cosine@1", b: "team/cosine@2", steps: 10, groups: [{ lr: 0.5 }] } },
    { name: "open_ref", about: "open by ref with a run: the reply adds `resolved`, the server records the use", admin: false, setup: [publish(1, COSINE), alias(2, 1)], request: openRef(3) },
    { name: "window_run", about: "a window with an origin, carrying the run's id: the server records the origin", admin: false, setup: [publish(1, COSINE), alias(2, 1), openRef(3)], request: { v: 2, id: 4, type: "rebase", hash, start: 51, count: 2, origin: { step: 50, lr: [0.05] }, run: RUN.id } },
    { name: "runs", about: "the runs that used what a ref resolves to, newest first", admin: false, setup: [publish(1, COSINE), alias(2, 1), openRef(3)], request: { v: 2, id: 4, type: "runs", ref: "team/cosine@prod" } },
    { name: "runs_run", about: "one run with its events, groups and last_epoch: what a replay needs", admin: false, setup: [publish(1, COSINE), alias(2, 1), openRef(3), { v: 2, id: 4, type: "rebase", hash, start: 51, count: 2, origin: { step: 50, lr: [0.05] }, run: RUN.id }], request: { v: 2, id: 5, type: "runs", run: RUN.id } },
    { name: "publish_module", about: "publish a schedule module: the node without params is the version; `params` are what it is probed with", admin: true, request: publishModule(1) },
    { name: "open_ref_params", about: "open a module version by ref with params: laid over the node's, they enter the handle's hash", admin: false, setup: [publishModule(1)], request: { v: 2, id: 2, type: "open", ref: "team/warm@1", params: { total: 1000, warm: 50 }, groups: GROUPS } },
    { name: "error_params_not_module", about: "params with a ref to a version that is not a module: BAD_REQUEST naming the ref", admin: false, setup: [publish(1, COSINE)], request: { v: 2, id: 2, type: "open", ref: "team/cosine@1", params: { total: 1000 }, groups: GROUPS } },
    { name: "error_BAD_REF", about: "a malformed ref", admin: false, request: { v: 2, id: 1, type: "resolve", ref: "Team/cosine@0" } },
    { name: "error_UNKNOWN_REF", about: "a name, version, alias or hash the store does not hold", admin: false, setup: [publish(1, COSINE)], request: { v: 2, id: 2, type: "resolve", ref: "team/cosine@7" } },
    { name: "error_ALIAS_CONFLICT", about: "a compare-and-set move that lost: the message says where the alias points now", admin: true, setup: [publish(1, COSINE), publish(2, SHORTER, "shorter"), alias(3, 2)], request: alias(4, 1, { expect: 1 }) },
    { name: "error_FORBIDDEN", about: "an admin message on a tcp serving endpoint", admin: false, request: publish(1, COSINE) },
  ];
}

/** The handle the vectors' open by ref gets (never hard-coded). */
async function handleHash(): Promise<string> {
  const { front, close } = await vectorFront(true);
  try {
    await front.handle(publish(1, COSINE));
    await front.handle(alias(2, 1));
    const reply = (await front.handle(openRef(3))) as { hash?: string };
    if (!reply.hash) throw new Error(`open by ref failed while generating vectors: ${JSON.stringify(reply)}`);
    return reply.hash;
  } finally {
    await close();
  }
}

export async function registryVector(c: RegistryCase): Promise<Msg> {
  // Setup goes through an admin front on the same store; the request through the case's endpoint.
  const store = await SqliteStore.open(":memory:");
  const registry = new Registry(store, { bind, now: VECTOR_CLOCK });
  const handler = new Handler({ bind, now: VECTOR_CLOCK });
  const admin = new RegistryFront({ handler, registry, admin: true });
  const front = new RegistryFront({ handler, registry, admin: c.admin });
  const close = () => store.close();
  try {
    for (const setup of c.setup ?? []) {
      const reply = (await admin.handle(setup)) as { type: string };
      if (reply.type === "error") throw new Error(`${c.name}: setup failed: ${JSON.stringify(reply)}`);
    }
    const bytes = encodeBody(c.request);
    const replyBytes = (await front.handleBytes(bytes)).bytes;
    return {
      name: c.name,
      about: c.about,
      registry: { admin: c.admin },
      ...(c.setup ? { setup: c.setup } : {}),
      request: toJsonable(c.request),
      request_hex: bytes.toString("hex"),
      reply: toJsonable(decodeBody(replyBytes)),
      reply_hex: replyBytes.toString("hex"),
    };
  } finally {
    await close();
  }
}

/** STORE_UNAVAILABLE needs a store that failed: pinned as a closed SQLite store answers (reply only). */
export async function storeUnavailableVector(): Promise<Msg> {
  const { front, close } = await vectorFront(true);
  await close();
  const replyBytes = (await front.handleBytes(encodeBody(publish(9, COSINE)))).bytes;
  return {
    name: "error_STORE_UNAVAILABLE",
    about: "the store cannot be reached or written (reply only: how a store fails depends on the store); refs the server has cached are still served",
    request: null,
    request_hex: null,
    reply: toJsonable(decodeBody(replyBytes)),
    reply_hex: replyBytes.toString("hex"),
  };
}
