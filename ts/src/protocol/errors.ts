/** Error codes of protocol v2 (proto/PROTOCOL.md, "error"). */
export const ERROR_CODES = [
  "BAD_FRAME",
  "BAD_VERSION",
  "UNKNOWN_TYPE",
  "BAD_REQUEST",
  "SPEC_INVALID",
  "REFUSED",
  "UNKNOWN_HASH",
  "WRONG_KIND",
  "WINDOW_TOO_LARGE",
  "TOO_LARGE",
  "REPLAY_PENDING",
  "INTERNAL",
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/**
 * A request the server refuses. Handlers throw it; the dispatcher turns it
 * into exactly one `error` reply, so no handler builds error replies itself.
 */
export class ProtocolError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly path?: string,
    /** What torch raises here (type and verbatim text), when torch raises. */
    readonly py?: { type: string; message: string },
  ) {
    super(message);
    this.name = "ProtocolError";
  }
}
