/**
 * Sampling rate (REX paper: schedule = profile × sampling rate): how often the
 * lr is re-read from its profile. Every step is the default (no wrapper);
 * between samples the last sampled value is held, giving a staircase.
 */
import type { Schedule } from "./types";

/** Re-sample every `every` steps: value at t is `s(⌊t/every⌋·every)`. */
export function sampleEvery(s: Schedule, every: number): Schedule {
  return (t) => s(Math.floor(t / every) * every);
}

/**
 * Re-sample `times` times over `totalSteps` (a staircase of `times` levels):
 * level j = ⌊t·times/T⌋ holds `s(j·T/times)`, the profile read at progress
 * j/times (possibly a fractional step). From t = T on, `s(T)`.
 * E.g. an exponential profile sampled 3 times is the classic step decay.
 */
export function sampleTimes(s: Schedule, times: number, totalSteps: number): Schedule {
  return (t) => {
    const level = Math.floor((Math.max(t, 0) * times) / totalSteps);
    return level >= times ? s(totalSteps) : s((level * totalSteps) / times);
  };
}
