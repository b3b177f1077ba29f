/**
 * The socket loop: one ROUTER, one receive loop, every send awaited
 * (zeromq.js allows one pending send per socket). All message logic is in
 * Handler; this file only moves frames and logs.
 */
import { unlinkSync } from "node:fs";
import { Router } from "zeromq";
import { errorReply, Handler, HandlerOptions } from "./handler";
import { encodeBody } from "../protocol";
import { splitFrames } from "./envelope";

export interface ServerOptions extends HandlerOptions {
  /** `tcp://host:port` (port 0 picks a free one) or `ipc://path`. */
  endpoint: string;
  /** One line per event (open, internal error); stderr in the CLI. */
  log?: (line: string) => void;
}

export interface RunningServer {
  /** The endpoint actually bound (the real port when 0 was asked for). */
  readonly endpoint: string;
  /** Resolves when the receive loop has ended. */
  readonly done: Promise<void>;
  /** Stops serving, closes the socket and removes an ipc socket file. */
  close(): Promise<void>;
}

/** Above this size libzmq drops the peer instead of us answering TOO_LARGE. */
const MAX_FRAME_BYTES = 64 * 1024 * 1024;

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const log = options.log ?? (() => {});
  const handler = new Handler({
    ...options,
    onInternalError: (err) => {
      log(`${new Date().toISOString()} internal error: ${err instanceof Error ? err.stack : String(err)}`);
      options.onInternalError?.(err);
    },
  });
  const socket = new Router({ linger: 0, maxMessageSize: MAX_FRAME_BYTES });
  await socket.bind(options.endpoint);
  const endpoint = socket.lastEndpoint ?? options.endpoint;
  const ipcPath = ipcFilePath(endpoint);

  let closing = false;
  const done = (async () => {
    try {
      for await (const frames of socket) {
        const reply = replyFrames(handler, frames, log);
        try {
          await socket.send(reply);
        } catch (err) {
          if (closing) break;
          // The peer is gone or the queue is full: its reply is lost, others are not.
          log(`${new Date().toISOString()} send failed: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
    } catch (err) {
      if (!closing) throw err;
    }
  })();

  return {
    endpoint,
    done,
    async close() {
      if (closing) return done;
      closing = true;
      socket.close();
      await done.catch(() => {});
      if (ipcPath) removeQuietly(ipcPath);
    },
  };
}

/** One incoming message → the reply frames (same envelope head). Never throws. */
function replyFrames(handler: Handler, frames: Buffer[], log: (line: string) => void): Buffer[] {
  const split = splitFrames(frames);
  if ("malformed" in split) return [...split.head, encodeBody(errorReply(null, "BAD_FRAME", split.malformed))];
  const handled = handler.handleBytes(split.body);
  if (handled.request?.type === "open" && handled.reply.type === "opened") {
    const spec = handled.request.spec;
    const specType = typeof spec.type === "string" ? spec.type : "?";
    log(
      `${new Date().toISOString()} open peer=${split.head[0].toString("hex")} type=${specType} ` +
        `spec=${handled.reply.spec_hash.slice(0, 12)} groups=${handled.reply.groups}`,
    );
  }
  return [...split.head, handled.bytes];
}

function ipcFilePath(endpoint: string): string | null {
  if (!endpoint.startsWith("ipc://")) return null;
  const path = endpoint.slice("ipc://".length);
  return path.startsWith("@") ? null : path; // "@name" is a Linux abstract socket: no file
}

function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone (libzmq may remove it on close)
  }
}
