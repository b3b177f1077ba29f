/**
 * ROUTER framing. A REQ peer's message arrives as [identity, "", body], a
 * DEALER's as [identity, body]; the reply goes back with the same head.
 */
export type Split =
  | { head: Buffer[]; body: Buffer }
  | { head: Buffer[]; malformed: string };

const EMPTY = Buffer.alloc(0);

export function splitFrames(frames: Buffer[]): Split {
  const [identity, ...rest] = frames;
  if (rest.length === 1) return { head: [identity], body: rest[0] };
  const delimited = rest.length > 0 && rest[0].length === 0;
  if (delimited && rest.length === 2) return { head: [identity, EMPTY], body: rest[1] };
  return {
    head: delimited ? [identity, EMPTY] : [identity],
    malformed: `expected [body] or ["", body] after the identity, got ${rest.length} frame(s)`,
  };
}
