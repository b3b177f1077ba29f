/**
 * Regenerates proto/vectors/wire/*.json: one file per message and error code.
 *
 *   npx ts-node ts/scripts/gen-wire-vectors.ts
 *
 * Requests are what a client sends: plain JSON-able maps in the key order
 * the Python client writes them (v, id, type, then fields), with no
 * integer-valued floats, so msgpack-python encodes them to `request_hex`
 * byte for byte. Replies are what this server answers (`reply_hex`, as
 * msgpackr writes them). Vectors that need an open schedule list the
 * requests to send first in `setup`.
 */
import { mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { Packr } from "msgpackr";
import { join } from "node:path";
import { decodeBody, encodeBody, MAX_REQUEST_BYTES, MAX_WINDOW, toJsonable } from "../src/protocol";
import { bind } from "../src/bind";
import { VECTOR_CLOCK } from "./vector_clock";
import { Handler } from "../src/server/handler";
import { registryCases, registryVector, storeUnavailableVector } from "./registry-vectors";

const OUT_DIR = join(__dirname, "..", "..", "proto", "vectors", "wire");

type Msg = Record<string, unknown>;

interface VectorCase {
  name: string;
  about: string;
  setup?: Msg[];
  /** The request as sent; a string is raw hex that is not a request map. */
  request: Msg | unknown[] | { hex: string } | { size: number };
}

const STEP = { type: "StepLR", step_size: 3, gamma: 0.5 };
const STEP_GROUPS = [{ lr: 0.1, momentum: 0.9 }];
const ONECYCLE = { type: "OneCycleLR", max_lr: 0.5, total_steps: 10 };
const ADAM_GROUPS = [
  { lr: 0.1, betas: [0.9, 0.999] },
  { lr: 0.2, betas: [0.9, 0.999] },
];
const WARM_RESTARTS = { type: "CosineAnnealingWarmRestarts", T_0: 2, T_mult: 2 };
const PLATEAU = { type: "ReduceLROnPlateau", factor: 0.5, patience: 1 };
const PLAIN_GROUPS = [{ lr: 0.1 }];

// Requests in the client's key order (v, id, type, then fields).
const open = (id: number, spec: Msg, groups: Msg[], lastEpoch?: number): Msg =>
  lastEpoch === undefined ? { v: 2, id, type: "open", spec, groups } : { v: 2, id, type: "open", spec, groups, last_epoch: lastEpoch };
const window = (id: number, hash: string, start: number, count: number): Msg => ({ v: 2, id, type: "window", hash, start, count });
const rebase = (id: number, hash: string, start: number, count: number, origin: Msg): Msg => ({ v: 2, id, type: "rebase", hash, start, count, origin });
const epoch = (id: number, hash: string, epochs: number[], lr?: number[]): Msg =>
  lr === undefined ? { v: 2, id, type: "epoch", hash, epochs } : { v: 2, id, type: "epoch", hash, epochs, lr };
const MULT = { type: "MultiplicativeLR", lr_lambda: "0.9" };
const CYCLIC = { type: "CyclicLR", base_lr: 0.01, max_lr: 0.1, step_size_up: 2, cycle_momentum: false };
const LAMBDA_FAILS = { type: "LambdaLR", lr_lambda: "1 / (3 - epoch)" };
/** A resumed optimizer: lr 0.0125 now, initial_lr 0.1, the lr a float32 tensor. */
const RESUMED_GROUPS = [{ lr: 0.0125, initial_lr: 0.1, momentum: 0.9, lr_dtype: "float32" }];

/** A scratch handler's reply to opening a spec (so vectors never hard-code a hash or state). */
function opened(spec: Msg, groups: Msg[]): { hash: string; spec_hash: string; state?: unknown } {
  const reply = new Handler({ bind }).handle(open(0, spec, groups)) as { hash?: string; spec_hash?: string; state?: unknown };
  if (!reply.hash || !reply.spec_hash) throw new Error(`open failed while generating vectors: ${JSON.stringify(reply)}`);
  return reply as { hash: string; spec_hash: string; state?: unknown };
}

const hashOf = (spec: Msg, groups: Msg[]): string => opened(spec, groups).hash;

/** The state right after construction of a metric schedule, as a client would hold it. */
function initialState(spec: Msg, groups: Msg[]): unknown {
  // Through the wire and back, exactly as the client stores it.
  return decodeBody(encodeBody(opened(spec, groups).state));
}

function cases(): VectorCase[] {
  const step = hashOf(STEP, STEP_GROUPS);
  const oneCycle = hashOf(ONECYCLE, ADAM_GROUPS);
  const restarts = hashOf(WARM_RESTARTS, PLAIN_GROUPS);
  const plateau = hashOf(PLATEAU, PLAIN_GROUPS);
  const lambdaFails = hashOf(LAMBDA_FAILS, PLAIN_GROUPS);
  const cyclic = hashOf(CYCLIC, PLAIN_GROUPS);
  const mult = hashOf(MULT, PLAIN_GROUPS);
  return [
    { name: "hello", about: "handshake", request: { v: 2, id: 1, type: "hello", client: "lrbridge-python/0.1" } },
    { name: "open", about: "bind a deterministic spec (SGD group with momentum)", request: open(2, STEP, STEP_GROUPS) },
    { name: "open_betas", about: "bind a spec that writes beta1 (Adam groups)", request: open(3, ONECYCLE, ADAM_GROUPS) },
    { name: "open_metric", about: "bind a metric-driven spec: the reply carries the initial state", request: open(4, PLATEAU, PLAIN_GROUPS) },
    {
      name: "window",
      about: "rows [0, 8) of a StepLR",
      setup: [open(2, STEP, STEP_GROUPS)],
      request: window(5, step, 0, 8),
    },
    {
      name: "window_momentum",
      about: "rows [4, 7) of a OneCycleLR over 2 groups: lr and beta1 bins, row-major",
      setup: [open(3, ONECYCLE, ADAM_GROUPS)],
      request: window(6, oneCycle, 4, 3),
    },
    {
      name: "rebase",
      about: "lr set to 0.05 by hand at row 4; rows 5.. continue from it",
      setup: [open(2, STEP, STEP_GROUPS)],
      request: rebase(7, step, 5, 4, { step: 4, lr: [0.05] }),
    },
    {
      name: "epoch",
      about: "deprecated step(epoch) with fractional epochs",
      setup: [open(8, WARM_RESTARTS, PLAIN_GROUPS)],
      request: epoch(9, restarts, [0.5, 1.5, 3.25, 6.5]),
    },
    {
      name: "metric",
      about: "one ReduceLROnPlateau step from the initial state",
      setup: [open(4, PLATEAU, PLAIN_GROUPS)],
      request: { v: 2, id: 10, type: "metric", hash: plateau, state: initialState(PLATEAU, PLAIN_GROUPS), metric: 0.75 },
    },
    {
      name: "open_resumed",
      about: "bind against a resumed optimizer: current lr, initial_lr, a float32 tensor lr, last_epoch 6 (first_row 7)",
      request: open(19, STEP, RESUMED_GROUPS, 6),
    },
    {
      name: "open_resumed_one_cycle",
      about: "resume a OneCycleLR at last_epoch 4: the group carries the max_lr, min_lr and momentum bounds its first constructor wrote",
      request: open(20, ONECYCLE, [{ lr: 0.3, initial_lr: 0.02, momentum: 0.9, max_lr: 0.5, min_lr: 2e-6, max_momentum: 0.95, base_momentum: 0.85 }], 4),
    },
    {
      name: "window_stop",
      about: "rows [8, 12) of a OneCycleLR with total_steps 10: torch raises at row 11, so the window stops there",
      setup: [open(3, ONECYCLE, ADAM_GROUPS)],
      request: window(20, oneCycle, 8, 4),
    },
    {
      name: "window_stop_expression",
      about: "a LambdaLR whose lr_lambda divides by zero at epoch 3: the window stops at row 3 with torch's ZeroDivisionError",
      setup: [open(21, LAMBDA_FAILS, PLAIN_GROUPS)],
      request: window(22, lambdaFails, 0, 6),
    },
    {
      name: "window_attrs",
      about: "rows [0, 5) of a CosineAnnealingWarmRestarts: T_cur and T_i per row",
      setup: [open(8, WARM_RESTARTS, PLAIN_GROUPS)],
      request: window(23, restarts, 0, 5),
    },
    {
      name: "rebase_attrs",
      about: "CosineAnnealingWarmRestarts with T_cur and T_i set by hand at row 3 (values with a fraction: the request holds no integer-valued floats); rows 4.. continue from them",
      setup: [open(8, WARM_RESTARTS, PLAIN_GROUPS)],
      request: rebase(26, restarts, 4, 3, { step: 3, lr: [0.05], attrs: { T_cur: 0.5, T_i: 4.5 } }),
    },
    {
      name: "window_cycle_starts",
      about: "rows [0, 6) of a CyclicLR (cycles of 4 steps): cycle_starts",
      setup: [open(24, CYCLIC, PLAIN_GROUPS)],
      request: window(25, cyclic, 0, 6),
    },
    {
      name: "epoch_lr",
      about: "MultiplicativeLR.step(epoch) from lr 0.05: the recursive form starts from the given group lrs (floats on the wire: no integer-valued epoch here)",
      setup: [open(26, MULT, PLAIN_GROUPS)],
      request: epoch(27, mult, [2.5], [0.05]),
    },
    {
      name: "error_REFUSED",
      about: "OneCycleLR.step(12.5) with total_steps 10: torch's ValueError, verbatim in py",
      setup: [open(3, ONECYCLE, ADAM_GROUPS)],
      request: epoch(28, oneCycle, [12.5]),
    },
    {
      name: "heartbeat",
      about: "a run's position (its real step, last lr and momentum); fire-and-forget: the server sends no reply (reply and reply_hex are null)",
      setup: [open(2, STEP, STEP_GROUPS)],
      request: {
        v: 2,
        id: 31,
        type: "heartbeat",
        run: { id: "0f8fad5bd9cb469fa165b2b0a1f6e3c4", name: "train <digits>", host: "node-1", pid: 4242 },
        hash: step,
        spec_hash: opened(STEP, STEP_GROUPS).spec_hash,
        step: 7,
        lr: [0.025],
        momentum: [0.9],
        total: null,
        state: "running",
      },
    },
    {
      name: "stats",
      about: "the live view after one open and one window (clock fixed for the vector: times are Unix seconds)",
      setup: [open(2, STEP, STEP_GROUPS), window(5, step, 0, 8)],
      request: { v: 2, id: 29, type: "stats" },
    },
    { name: "error_BAD_FRAME", about: "the body is a msgpack array, not a map", request: [1, "hello"] },
    { name: "error_BAD_FRAME_undecodable", about: "the body is not msgpack (0xc1 is never used)", request: { hex: "c1" } },
    {
      name: "error_BAD_FRAME_extension",
      about: "a msgpackr record (an extension type) is not plain msgpack: refused before decoding",
      request: { hex: new Packr({ useRecords: true }).pack({ v: 2, id: 1, type: "hello" }).toString("hex") },
    },
    { name: "error_BAD_VERSION", about: "v is 1: this server speaks 2 only", request: { v: 1, id: 11, type: "hello" } },
    { name: "error_UNKNOWN_TYPE", about: "type is not a message", request: { v: 2, id: 12, type: "dance" } },
    { name: "error_BAD_REQUEST", about: "count must be >= 1", request: window(13, step, 0, 0) },
    {
      name: "error_SPEC_INVALID",
      about: "pct_start must be in [0, 1]",
      request: open(14, { ...ONECYCLE, pct_start: 1.5 }, PLAIN_GROUPS),
    },
    {
      name: "error_SPEC_INVALID_limit",
      about: "a spec over one of the limits announced in hello: the message names the limit",
      request: open(19, { type: "fractal", horizon: 2 ** 20, lambda_min: 0.1, lambda_max: 10 }, PLAIN_GROUPS),
    },
    {
      name: "error_UNKNOWN_HASH",
      about: "no such handle (server restarted or evicted): re-open and retry",
      request: window(15, "0".repeat(64), 0, 1),
    },
    {
      name: "error_WRONG_KIND",
      about: "window on a metric-driven schedule",
      setup: [open(4, PLATEAU, PLAIN_GROUPS)],
      request: window(16, plateau, 0, 1),
    },
    {
      name: "error_WINDOW_TOO_LARGE",
      about: `count over max_window (${MAX_WINDOW})`,
      request: window(17, step, 0, MAX_WINDOW + 1),
    },
    {
      name: "error_TOO_LARGE",
      about: "any body over 1 MiB (here: that many zero bytes) is refused before decoding",
      request: { size: MAX_REQUEST_BYTES + 1 },
    },
  ];
}

/** A reply the server gives only on a bug: no request produces it, so the vector is reply-only. */
function internalVector(): Msg {
  const reply = { v: 2, id: 18, type: "error", code: "INTERNAL", message: "internal error: example" };
  return {
    name: "error_INTERNAL",
    about: "a bug in the server (reply only: no valid request triggers it); the server keeps serving",
    request: null,
    request_hex: null,
    reply,
    reply_hex: encodeBody(reply).toString("hex"),
  };
}

/**
 * How far a replay gets in its slice depends on the machine, so this reply is
 * pinned as the server makes it with a zero budget (one check interval of
 * steps); a real server answers the same shape with another row.
 */
function replayPendingVector(): Msg {
  const handler = new Handler({ bind, replaySliceMs: 0 });
  const setup = open(2, STEP, STEP_GROUPS);
  handler.handle(setup);
  const request = window(20, hashOf(STEP, STEP_GROUPS), 100_000_000, 64);
  const replyBytes = handler.handleBytes(encodeBody(request)).bytes;
  return {
    name: "error_REPLAY_PENDING",
    about:
      "a window far past what the server has simulated: it replayed for its per-request slice, kept the simulation, " +
      "and asks for the same request again (reply only: the row reached depends on the machine)",
    request: null,
    request_hex: null,
    reply: toJsonable(decodeBody(replyBytes)),
    reply_hex: replyBytes.toString("hex"),
  };
}

function requestBytes(request: VectorCase["request"]): Buffer {
  if ("hex" in request) return Buffer.from((request as { hex: string }).hex, "hex");
  if ("size" in request) return Buffer.alloc((request as { size: number }).size);
  return encodeBody(request);
}

function vectorFor(c: VectorCase): Msg {
  const handler = new Handler({ bind, now: VECTOR_CLOCK });
  for (const setup of c.setup ?? []) {
    const reply = handler.handle(setup);
    if (reply.type === "error") throw new Error(`${c.name}: setup failed: ${JSON.stringify(reply)}`);
  }
  const bytes = requestBytes(c.request);
  const { bytes: replyBytes } = handler.handleBytes(bytes);
  const vector: Msg = { name: c.name, about: c.about };
  if (c.setup) vector.setup = c.setup;
  if ("size" in c.request) {
    Object.assign(vector, { request: null, request_hex: null, request_size: bytes.length });
  } else if ("hex" in c.request) {
    Object.assign(vector, { request: null, request_hex: bytes.toString("hex") });
  } else {
    Object.assign(vector, { request: toJsonable(c.request), request_hex: bytes.toString("hex") });
  }
  if (replyBytes.length === 0) {
    Object.assign(vector, { reply: null, reply_hex: null }); // a message that gets no reply
    return vector;
  }
  vector.reply = toJsonable(decodeBody(replyBytes));
  vector.reply_hex = replyBytes.toString("hex");
  return vector;
}

/** Replaces the vectors in `dir` (its .json files) with `vectors`, one file each. */
function writeVectors(dir: string, vectors: Msg[]): void {
  mkdirSync(dir, { recursive: true });
  for (const file of readdirSync(dir)) if (file.endsWith(".json")) rmSync(join(dir, file));
  for (const vector of vectors) writeFileSync(join(dir, `${vector.name}.json`), `${JSON.stringify(vector, null, 1)}\n`);
  process.stdout.write(`wrote ${vectors.length} vectors to ${dir}\n`);
}

async function main(): Promise<void> {
  writeVectors(OUT_DIR, [...cases().map(vectorFor), internalVector(), replayPendingVector()]);
  // The registry's: answered by a server with a store (registry-vectors.ts).
  const registry = [...(await Promise.all((await registryCases()).map(registryVector))), await storeUnavailableVector()];
  writeVectors(join(OUT_DIR, "registry"), registry);
}

void main();
