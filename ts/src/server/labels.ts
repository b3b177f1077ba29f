/**
 * Client labels (`open.client`, e.g. "host:pid train.py") come from any peer
 * and end up on other people's terminals (`lrbridge top`) and in logs. They
 * are stored escaped, and shown in full only to authenticated peers.
 */
import { createHmac, randomBytes } from "node:crypto";

/**
 * C0 and C1 controls, DEL, and the format characters that reorder or hide
 * text (bidi embeddings, overrides and isolates, line/paragraph separators),
 * plus lone surrogates: nothing here may reach a terminal raw.
 */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

function escapeChar(ch: string): string {
  const code = ch.charCodeAt(0);
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`;
}

/** The label as stored: unsafe characters as `\xHH` / `\uHHHH`, and `\` as `\\` so the escaping is unambiguous. */
export function escapeLabel(label: string): string {
  return label.replace(/\\/g, "\\\\").replace(UNSAFE, escapeChar);
}

/** Text for a terminal from a source that may not have escaped it (a reply from another server). */
export function printable(text: string): string {
  return text.replace(UNSAFE, escapeChar);
}

/** Per process: a redacted label cannot be matched against guessed host:pid strings. */
const REDACTION_KEY = randomBytes(32);

/**
 * What an unauthenticated peer sees instead of a label: a token that is the
 * same for the same label (clients can still be counted and told apart), and
 * says nothing about host, pid or script.
 */
export function redactLabel(label: string): string {
  return `redacted:${createHmac("sha256", REDACTION_KEY).update(label).digest("hex").slice(0, 8)}`;
}

/**
 * A run as an unauthenticated peer sees it: its chosen name, but not the
 * default one (`host:pid script`), no host and no pid.
 */
export function redactRun<T extends { name?: unknown; host?: unknown; pid?: unknown }>(run: T): T {
  const out = { ...run };
  if (typeof out.name === "string" && typeof out.host === "string" && out.name.startsWith(`${out.host}:`)) out.name = redactLabel(out.name);
  if (typeof out.host === "string") out.host = redactLabel(out.host);
  if (out.pid !== undefined) out.pid = null;
  return out;
}
