/**
 * Deterministic lr noise in the style of timm's Scheduler._add_noise:
 * inside the noise range, `lr·(1 + n)` with n drawn afresh for each step t
 * from a generator seeded by `seed + t`, so any step's value is computable
 * alone (no hidden state, windows can be served in any order).
 *
 * timm draws n with torch.Generator (normal: resample `randn` until
 * |n| < noise_pct; uniform: `2·(rand - 0.5)·noise_pct`). We do not reproduce
 * torch's Mersenne-Twister/Box-Muller stream: our noise has the same
 * distribution and the same determinism but is NOT bit-identical to timm's.
 *
 * Our generator is counter-based: uniform #j of step t is a 53-bit hash of
 * (seed + t, j) built from the "lowbias32" integer mixer (C. Wellons);
 * normals use Box-Muller on uniforms #2i and #2i+1 (cosine branch only).
 */
import type { Schedule } from "./types";

export type NoiseType = "normal" | "uniform";

export interface NoiseOptions {
  /** timm noise_range_t: a start step (noise for t >= start) or [start, end). */
  range: number | [number, number];
  /** timm noise_pct: bound on |n| (normal: rejection; uniform: half-width). */
  pct: number;
  /** std of the normal before rejection. timm's torch path ignores noise_std (uses 1). */
  std: number;
  type: NoiseType;
  seed: number;
}

/** lowbias32: a 32-bit integer hash with good avalanche. */
function mix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

/** Split a non-negative integer < 2^53 into its low and high 32 bits. */
function words(n: number): [number, number] {
  return [n >>> 0, Math.floor(n / 4294967296) >>> 0];
}

/** Uniform in [0, 1) with 53 random bits: the j-th draw of stream `key`. */
export function hashUniform(key: number, j: number): number {
  const [lo, hi] = words(key);
  const h = mix32(lo ^ mix32(hi ^ mix32(j ^ 0x9e3779b9)));
  const a = mix32(h ^ 0x85ebca6b) >>> 5; // 27 bits
  const b = mix32(h ^ 0xc2b2ae35) >>> 6; // 26 bits
  return (a * 67108864 + b) / 9007199254740992;
}

/** Standard normal #i of stream `key` (Box-Muller, u1 ∈ (0, 1]). */
export function hashNormal(key: number, i: number): number {
  const u1 = 1 - hashUniform(key, 2 * i);
  const u2 = hashUniform(key, 2 * i + 1);
  return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
}

/** Is step t inside timm's noise_range_t? */
export function inNoiseRange(range: number | [number, number], t: number): boolean {
  return Array.isArray(range) ? range[0] <= t && t < range[1] : t >= range;
}

const MAX_REJECTIONS = 10000;

/** The noise n for step t (0 outside the range). */
export function noiseAt(opts: NoiseOptions, t: number): number {
  if (!inNoiseRange(opts.range, t)) return 0;
  const key = opts.seed + t;
  if (opts.type === "uniform") return 2 * (hashUniform(key, 0) - 0.5) * opts.pct;
  // Rejection like timm; the cap only matters for absurd pct/std ratios.
  for (let i = 0; i < MAX_REJECTIONS; i++) {
    const n = hashNormal(key, i) * opts.std;
    if (Math.abs(n) < opts.pct) return n;
  }
  return 0;
}

/** timm-style multiplicative noise: `s(t)·(1 + n(t))` inside the range. */
export function withNoise(s: Schedule, opts: NoiseOptions): Schedule {
  return (t) => {
    const v = s(t);
    return v + v * noiseAt(opts, t);
  };
}
