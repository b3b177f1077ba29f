/**
 * Registry refs: `namespace/name[@selector]` (proto/PROTOCOL.md, "Refs").
 * Parsing is the one place these rules live; the server, the CLI and the
 * stores all take a parsed Ref.
 */

const PART = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const ALIAS = /^[a-z][a-z0-9._-]{0,63}$/;
const HASH = /^[0-9a-f]{64}$/;
const VERSION = /^[1-9][0-9]*$/;

export type Selector =
  | { kind: "latest" }
  | { kind: "version"; version: number }
  | { kind: "alias"; alias: string }
  | { kind: "hash"; hash: string };

export interface Ref {
  /** `namespace/name`, the key versions are numbered under. */
  name: string;
  selector: Selector;
  /** The ref as written. */
  text: string;
}

/** A ref or name that breaks the grammar: BAD_REF at `path`. */
export class RefError extends Error {
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(message);
    this.name = "RefError";
  }
}

/** `namespace/name` alone (publish, alias, history). */
export function parseName(text: unknown, path = "name"): string {
  if (typeof text !== "string") throw new RefError(path, `${path}: expected a string namespace/name`);
  const parts = text.split("/");
  if (parts.length !== 2 || !parts.every((p) => PART.test(p))) {
    throw new RefError(path, `${path}: ${JSON.stringify(clip(text))} is not namespace/name (each [a-z0-9][a-z0-9._-]{0,63})`);
  }
  return text;
}

export function parseAlias(text: unknown, path = "alias"): string {
  if (typeof text !== "string" || !ALIAS.test(text) || text === "latest") {
    throw new RefError(path, `${path}: ${JSON.stringify(clip(String(text)))} is not an alias ([a-z][a-z0-9._-]{0,63}, not "latest")`);
  }
  return text;
}

export function parseRef(text: unknown, path = "ref"): Ref {
  if (typeof text !== "string") throw new RefError(path, `${path}: expected a string namespace/name[@selector]`);
  const at = text.indexOf("@");
  const name = parseNameIn(at < 0 ? text : text.slice(0, at), text, path);
  if (at < 0) return { name, selector: { kind: "latest" }, text };
  const sel = text.slice(at + 1);
  const bad = (rule: string): never => {
    throw new RefError(path, `${path}: ${JSON.stringify(clip(text))}: ${rule}`);
  };
  if (sel === "latest") return { name, selector: { kind: "latest" }, text };
  if (sel.startsWith("sha256:")) {
    const hash = sel.slice("sha256:".length);
    if (!HASH.test(hash)) bad("a content address is sha256: and 64 lowercase hex digits");
    return { name, selector: { kind: "hash", hash }, text };
  }
  if (/^[0-9]/.test(sel)) {
    const version = Number(sel);
    if (!VERSION.test(sel) || !Number.isSafeInteger(version)) bad("a version is a decimal integer >= 1");
    return { name, selector: { kind: "version", version }, text };
  }
  if (!ALIAS.test(sel)) bad("the selector is a version, an alias ([a-z][a-z0-9._-]{0,63}), latest or sha256:HEX");
  return { name, selector: { kind: "alias", alias: sel }, text };
}

/** A version or hash selector never moves; `latest` and aliases do. */
export function isPinned(ref: Ref): boolean {
  return ref.selector.kind === "version" || ref.selector.kind === "hash";
}

export function formatRef(name: string, selector: Selector): string {
  switch (selector.kind) {
    case "latest":
      return name;
    case "version":
      return `${name}@${selector.version}`;
    case "alias":
      return `${name}@${selector.alias}`;
    case "hash":
      return `${name}@sha256:${selector.hash}`;
  }
}

function parseNameIn(part: string, whole: string, path: string): string {
  try {
    return parseName(part, path);
  } catch {
    throw new RefError(path, `${path}: ${JSON.stringify(clip(whole))} is not namespace/name[@selector] (each part [a-z0-9][a-z0-9._-]{0,63})`);
  }
}

function clip(text: string): string {
  return text.length > 80 ? `${text.slice(0, 80)}…` : text;
}
