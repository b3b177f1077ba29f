/**
 * Fuzzed request bodies, deterministic from a seed: valid messages of every
 * type with one or more fields mutated (wrong types, huge or negative
 * numbers, bigints, deep nesting, long strings, names of Object.prototype,
 * missing or extra keys),
 * valid bodies with bytes flipped or cut, and random bytes.
 */
import { encodeBody } from "../src/protocol";

type Msg = Record<string, unknown>;

/** xorshift32: small, seedable, the same sequence everywhere. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 2 ** 32;
  };
}

export const FUZZ_SPECS: Msg[] = [
  { type: "StepLR", step_size: 3, gamma: 0.5 },
  { type: "MultiStepLR", milestones: [2, 5, 9] },
  { type: "OneCycleLR", max_lr: 0.5, total_steps: 100 },
  { type: "CyclicLR", base_lr: 0.01, max_lr: 0.1, step_size_up: 4 },
  { type: "CosineAnnealingWarmRestarts", T_0: 3, T_mult: 2 },
  { type: "LambdaLR", lr_lambda: "0.9 ** epoch" },
  { type: "SequentialLR", schedulers: [{ type: "ConstantLR" }, { type: "ExponentialLR", gamma: 0.9 }], milestones: [4] },
  { type: "ChainedScheduler", schedulers: [{ type: "StepLR", step_size: 2 }, { type: "ExponentialLR", gamma: 0.9 }] },
  { type: "ReduceLROnPlateau", patience: 1 },
  { type: "cosine", total_steps: 50 },
  { type: "join", schedules: [{ type: "constant" }, { type: "linear", total_steps: 5 }], boundaries: [3] },
  { type: "fractal", horizon: 64, lambda_min: 0.1, lambda_max: 10 },
  { type: "range_test", num_steps: 20 },
];

const WEIRD: unknown[] = [
  null,
  true,
  -1,
  0,
  2 ** 53,
  -(2 ** 31),
  1e308,
  -0,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  2n ** 63n - 1n,
  -(2n ** 63n),
  "",
  "x".repeat(5000),
  "__proto__",
  [],
  [1, 2, 3],
  {},
  { type: "StepLR" },
  { __proto__: { polluted: 1 } },
  new Uint8Array([1, 2, 3]),
  new Uint8Array(7),
];

/** Strings a lookup table finds on Object.prototype unless it checks own keys. */
const PROTOTYPE_NAMES = ["__proto__", "constructor", "toString", "hasOwnProperty", "valueOf"];

function deep(n: number, leaf: unknown): unknown {
  let v = leaf;
  for (let i = 0; i < n; i++) v = i % 2 ? [v] : { a: v };
  return v;
}

function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)];
}

export const FUZZ_GROUPS = [{ lr: 0.1, momentum: 0.9 }];

function valid(r: () => number, id: number, hashes: readonly string[]): Msg {
  const hash = r() < 0.9 && hashes.length > 0 ? pick(r, hashes) : "0".repeat(64);
  const groups = structuredClone(FUZZ_GROUPS);
  switch (Math.floor(r() * 7)) {
    case 0:
      return { v: 2, id, type: "hello", client: "fuzz" };
    case 1:
      return { v: 2, id, type: "open", spec: structuredClone(pick(r, FUZZ_SPECS)), groups };
    case 2:
      return { v: 2, id, type: "window", hash, start: Math.floor(r() * 1000), count: 1 + Math.floor(r() * 64) };
    case 3:
      return { v: 2, id, type: "rebase", hash, start: 5, count: 4, origin: { step: 2, lr: [0.05] } };
    case 4:
      return { v: 2, id, type: "epoch", hash, epochs: [0.5, 1, 2.5] };
    case 5:
      return { v: 2, id, type: "metric", hash, metric: 0.5, state: { lr: [0.1], best: null, num_bad_epochs: 0, cooldown_counter: 0, last_epoch: 0 } };
    default:
      return { v: 2, id, type: "stats" };
  }
}

/** Entries of the maps and lists inside a message (the first 8 levels and 16 per list), with how to replace one. */
function slots(value: unknown, out: { holder: Record<string, unknown> | unknown[]; key: string | number }[] = [], depth = 0) {
  if (depth > 8) return out;
  if (Array.isArray(value)) value.slice(0, 16).forEach((v, i) => (out.push({ holder: value, key: i }), slots(v, out, depth + 1)));
  else if (value !== null && typeof value === "object" && !(value instanceof Uint8Array)) {
    for (const [k, v] of Object.entries(value)) out.push({ holder: value as Record<string, unknown>, key: k }), slots(v, out, depth + 1);
  }
  return out;
}

function mutate(r: () => number, msg: Msg): void {
  const edits = 1 + Math.floor(r() * 3);
  for (let e = 0; e < edits; e++) {
    const all = slots(msg);
    if (all.length === 0) return;
    const { holder, key } = pick(r, all);
    const set = (v: unknown) => ((holder as Record<string | number, unknown>)[key] = v);
    switch (Math.floor(r() * 6)) {
      case 0:
        set(pick(r, WEIRD));
        break;
      case 1:
        set(deep(10 + Math.floor(r() * 40), pick(r, WEIRD)));
        break;
      case 2:
        if (Array.isArray(holder)) holder.splice(key as number, 1);
        else delete holder[key as string];
        break;
      case 3:
        set(Array.from({ length: Math.floor(r() * 3000) }, () => r() * 10));
        break;
      case 4:
        if (!Array.isArray(holder)) holder[`extra${Math.floor(r() * 9)}`] = pick(r, WEIRD);
        break;
      default: {
        const v = holder[key as never] as unknown;
        if (typeof v === "string") set(pick(r, PROTOTYPE_NAMES));
        else set(typeof v === "number" ? v * (r() < 0.5 ? -1e9 : 1e9) : 12345);
      }
    }
  }
}

function encodeOrNull(msg: unknown): Buffer | null {
  try {
    return encodeBody(msg);
  } catch {
    return null; // a mutation msgpackr cannot write (e.g. a bigint beyond 64 bits)
  }
}

/** `count` request bodies from `seed`; `hashes`: handles the server holds (FUZZ_SPECS opened over FUZZ_GROUPS). */
export function* fuzzFrames(count: number, seed: number, hashes: readonly string[] = []): Generator<Buffer> {
  const r = rng(seed);
  for (let i = 0; i < count; i++) {
    const kind = r();
    if (kind < 0.15) {
      yield Buffer.from(Array.from({ length: Math.floor(r() * 64) + 1 }, () => Math.floor(r() * 256)));
      continue;
    }
    const msg = valid(r, i, hashes);
    if (kind < 0.85) mutate(r, msg);
    let bytes = encodeOrNull(msg) ?? encodeBody(valid(r, i, hashes));
    if (kind >= 0.85) {
      // Flip bytes or cut the body: the decoder must refuse it cleanly.
      bytes = Buffer.from(bytes);
      const flips = 1 + Math.floor(r() * 4);
      for (let f = 0; f < flips; f++) bytes[Math.floor(r() * bytes.length)] = Math.floor(r() * 256);
      if (r() < 0.3) bytes = bytes.subarray(0, Math.floor(r() * bytes.length) + 1);
    }
    yield bytes;
  }
}
