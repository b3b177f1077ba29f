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
  /** The message handler (the live view reads its runs and planned rows). */
  readonly handler: Handler;
  /** Stops serving, closes the socket and removes an ipc socket file. */
  close(): Promise<void>;
}

/** Above this size libzmq drops the peer instead of us answering TOO_LARGE. */
const MAX_FRAME_BYTES = 64 * 1024 * 1024;
/**
 * Replies libzmq queues per peer (its default is 1000, up to 16 GiB for a
 * peer that never reads). Past it, replies wait in the Outbox below, which
 * counts bytes.
 */
const SEND_HWM = 2;
/** Reply bytes kept waiting for one peer that is not reading; more are dropped. */
const PEER_OUTBOX_BYTES = 32 * 1024 * 1024;

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const log = options.log ?? (() => {});
  const handler = new Handler({
    ...options,
    onInternalError: (err) => {
      log(`${new Date().toISOString()} internal error: ${err instanceof Error ? err.stack : String(err)}`);
      options.onInternalError?.(err);
    },
  });
  // mandatory + sendTimeout 0: a full peer queue is an immediate EAGAIN the Outbox handles, never a silent drop.
  const socket = new Router({ linger: 0, maxMessageSize: MAX_FRAME_BYTES, sendHighWaterMark: SEND_HWM, mandatory: true, sendTimeout: 0 });
  await socket.bind(options.endpoint);
  const endpoint = socket.lastEndpoint ?? options.endpoint;
  const ipcPath = ipcFilePath(endpoint);

  let closing = false;
  const outbox = new Outbox(socket, log, () => closing);
  const done = (async () => {
    try {
      for await (const frames of socket) {
        const reply = replyFrames(handler, frames, log);
        if (reply) outbox.push(reply);
        // Let queued replies and timers run between requests.
        if (outbox.waiting) await outbox.flush();
      }
    } catch (err) {
      if (!closing) throw err;
    }
  })();

  return {
    endpoint,
    done,
    handler,
    async close() {
      if (closing) return done;
      closing = true;
      socket.close();
      await done.catch(() => {});
      if (ipcPath) removeQuietly(ipcPath);
    },
  };
}

/** One incoming message → the reply frames (same envelope head), or null for one that gets none. Never throws. */
function replyFrames(handler: Handler, frames: Buffer[], log: (line: string) => void): Buffer[] | null {
  const split = splitFrames(frames);
  if ("malformed" in split) return [...split.head, encodeBody(errorReply(null, "BAD_FRAME", split.malformed))];
  const handled = handler.handleBytes(split.body, split.head[0].toString("hex"));
  if (handled.silent) return null;
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

/**
 * Replies in order per peer. zeromq.js allows one send at a time, and with
 * `mandatory` a peer whose libzmq queue is full answers EAGAIN at once: its
 * replies wait here, up to PEER_OUTBOX_BYTES, and are retried when the loop
 * comes round again or on a short timer. A peer that reads gets every reply;
 * one that never reads costs at most SEND_HWM replies plus its outbox bytes.
 */
class Outbox {
  private readonly queues = new Map<string, { replies: Buffer[][]; bytes: number }>();
  private running: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly socket: Router,
    private readonly log: (line: string) => void,
    private readonly closing: () => boolean,
  ) {}

  get waiting(): boolean {
    return this.queues.size > 0;
  }

  push(reply: Buffer[]): void {
    const peer = reply[0].toString("latin1");
    const size = reply.reduce((n, f) => n + f.length, 0);
    let queue = this.queues.get(peer);
    if (!queue) this.queues.set(peer, (queue = { replies: [], bytes: 0 }));
    if (queue.replies.length > 0 && queue.bytes + size > PEER_OUTBOX_BYTES) {
      this.log(`${new Date().toISOString()} peer=${reply[0].toString("hex")} is not reading: reply of ${size} bytes dropped`);
      return;
    }
    queue.replies.push(reply);
    queue.bytes += size;
    void this.flush();
  }

  /** Sends what each peer can take now; resolves when this round is done. */
  flush(): Promise<void> {
    if (!this.running) {
      this.running = this.round().finally(() => {
        this.running = null;
        if (this.waiting && !this.timer && !this.closing()) {
          this.timer = setTimeout(() => {
            this.timer = null;
            void this.flush();
          }, 1);
        }
      });
    }
    return this.running;
  }

  private async round(): Promise<void> {
    for (const [peer, queue] of this.queues) {
      while (queue.replies.length > 0) {
        const reply = queue.replies[0];
        try {
          await this.socket.send(reply);
        } catch (err) {
          if (this.closing()) return;
          const code = (err as { code?: string }).code;
          if (code === "EAGAIN") break; // full: try this peer again later
          // Gone (EHOSTUNREACH) or broken: its replies are lost, others are not.
          this.log(`${new Date().toISOString()} send failed: ${err instanceof Error ? err.message : String(err)}`);
          queue.replies.length = 0;
          queue.bytes = 0;
          break;
        }
        queue.replies.shift();
        queue.bytes -= reply.reduce((n, f) => n + f.length, 0);
      }
      if (queue.replies.length === 0) this.queues.delete(peer);
    }
  }
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
