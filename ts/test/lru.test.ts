import { describe, expect, it } from "vitest";
import { LruCache } from "../src/server/lru";

describe("LruCache", () => {
  it("is a plain LRU when nothing says bytes or owners", () => {
    const cache = new LruCache<string, number>(3);
    for (const k of ["a", "b", "c"]) cache.set(k, 1);
    cache.get("a");
    cache.set("d", 1);
    expect([..."abcd"].filter((k) => cache.get(k) !== undefined)).toEqual(["a", "c", "d"]);
  });

  it("keeps its estimated bytes under the budget", () => {
    const cache = new LruCache<number, number>(1000, 100);
    for (let i = 0; i < 50; i++) cache.set(i, i, 10);
    expect(cache.bytes).toBeLessThanOrEqual(100);
    expect(cache.size).toBe(10);
    expect(cache.get(49)).toBe(49);
  });

  it("evicts the heaviest owner's entries before a light owner's older one", () => {
    const cache = new LruCache<string, number>(1000, 1000);
    cache.set("honest", 1, 10, "h");
    for (let i = 0; i < 500; i++) cache.set(`flood${i}`, i, 100, `attacker${i % 3}`);
    expect(cache.get("honest")).toBe(1);
    expect(cache.bytes).toBeLessThanOrEqual(1000);
  });

  it("keeps an entry that alone is over the budget until the next one comes", () => {
    const cache = new LruCache<string, number>(10, 100);
    cache.set("small", 1, 10);
    cache.set("huge", 2, 500);
    expect(cache.get("huge")).toBe(2);
    expect(cache.get("small")).toBeUndefined();
  });
});
