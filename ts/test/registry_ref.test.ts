import { describe, expect, it } from "vitest";
import { formatRef, isPinned, parseAlias, parseName, parseRef, RefError } from "../src/registry/ref";

const HEX = "ab".repeat(32);

describe("refs", () => {
  it("parses every selector", () => {
    expect(parseRef("team/cosine").selector).toEqual({ kind: "latest" });
    expect(parseRef("team/cosine@latest").selector).toEqual({ kind: "latest" });
    expect(parseRef("team/cosine@3").selector).toEqual({ kind: "version", version: 3 });
    expect(parseRef("team/cosine@prod").selector).toEqual({ kind: "alias", alias: "prod" });
    expect(parseRef(`team/cosine@sha256:${HEX}`).selector).toEqual({ kind: "hash", hash: HEX });
    expect(parseRef("a.b/c_d-e@v-1.x").name).toBe("a.b/c_d-e");
    expect(isPinned(parseRef("t/x@3"))).toBe(true);
    expect(isPinned(parseRef(`t/x@sha256:${HEX}`))).toBe(true);
    expect(isPinned(parseRef("t/x@prod"))).toBe(false);
    expect(isPinned(parseRef("t/x"))).toBe(false);
    expect(formatRef("t/x", { kind: "version", version: 4 })).toBe("t/x@4");
  });

  it.each([
    ["cosine", "namespace/name"],
    ["Team/cosine", "namespace/name"],
    ["team/cosine/x", "namespace/name"],
    ["team/", "namespace/name"],
    ["team/cosine@", "selector"],
    ["team/cosine@0", "version"],
    ["team/cosine@03", "version"],
    ["team/cosine@1.5", "version"],
    ["team/cosine@99999999999999999999", "version"],
    ["team/cosine@Prod", "selector"],
    ["team/cosine@sha256:ABC", "sha256"],
    [`team/cosine@sha256:${HEX}0`, "sha256"],
    ["team/cosine@a@b", "selector"],
    [`team/${"x".repeat(65)}`, "namespace/name"],
  ])("refuses %s", (text, rule) => {
    let err: unknown;
    try {
      parseRef(text);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(RefError);
    expect((err as RefError).path).toBe("ref");
    expect((err as RefError).message).toContain(rule);
  });

  it("checks names and aliases alone", () => {
    expect(parseName("team/x")).toBe("team/x");
    expect(() => parseName("team/x@1")).toThrow(RefError);
    expect(() => parseName(3)).toThrow(RefError);
    expect(parseAlias("prod")).toBe("prod");
    expect(() => parseAlias("latest")).toThrow(/not "latest"/);
    expect(() => parseAlias("1x")).toThrow(RefError);
  });
});
