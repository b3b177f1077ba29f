/**
 * The socket loop: one ROUTER, one receive loop, every send awaited
 * (zeromq.js allows one pending send per socket). All message logic is in
 * Handler; this file only moves frames and logs.
 */
import { unlinkSync } from "node:fs";
import type { Router, SocketOptions } from "zeromq";
import { errorReply, Handled, Handler, HandlerOptions } from "./handler";
import { encodeBody } from "../protocol";
import { splitFrames } from "./envelope";
import { Security, SecurityOptions } from "./security";
import { RegistryFront } from "./registry_handler";
import type { Registry } from "../registry/registry";

export interface ServerOptions extends HandlerOptions {
  /** `tcp://host:port` (port 0 picks a free one) or `ipc://path`. */
  endpoint: string;
  /** One line per event (open, internal error); stderr in the CLI. */
  log?: (line: string) => void;
  /** CURVE keys and allow-lists, or `insecure`; without them tcp binds only to loopback. */
  security?: Omit<SecurityOptions, "log">;
  /** Named, versioned schedules (`--registry`); without it the registry messages are unknown. */
  registry?: Registry;
  /** A second endpoint that takes the admin messages (publish, alias). */
  adminEndpoint?: string;
  /** The serving endpoint takes admin messages even on tcp:// (local development). */
  devAdmin?: boolean;
}

export interface RunningServer {
  /** The endpoint actually bound (the real port when 0 was asked for). */
  readonly endpoint: string;
  /** The admin endpoint actually bound, when one was asked for. */
  readonly adminEndpoint?: string;
  /** Resolves when the receive loop has ended. */
  readonly done: Promise<void>;
  /** The message handler (the live view reads its runs and planned rows). */
  readonly handler: Handler;
  /** Stops serving, closes the socket and removes an ipc socket file. */
  close(): Promise<void>;
  /** Re-reads the allow-lists (SIGHUP). */
  reloadKeys(): void;
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
export const PEER_OUTBOX_BYTES = 32 * 1024 * 1024;
/**
 * Reply bytes kept waiting for all peers together: many peers that never
 * read must not add up to unbounded memory. Past it, the peer holding the
 * most loses what it had waiting.
 */
export const OUTBOX_BYTES = 128 * 1024 * 1024;
/**
 * Every ROUTER the server binds. mandatory + sendTimeout 0: a full peer queue
 * is an immediate EAGAIN the Outbox handles, never a silent drop.
 */
export const ROUTER_OPTIONS: SocketOptions<Router> = {
  linger: 0,
  maxMessageSize: MAX_FRAME_BYTES,
  sendHighWaterMark: SEND_HWM,
  mandatory: true,
  sendTimeout: 0,
};

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const log = options.log ?? (() => {});
  const handler = new Handler({
    ...options,
    onInternalError: (err) => {
      log(`${new Date().toISOString()} internal error: ${err instanceof Error ? err.stack : String(err)}`);
      options.onInternalError?.(err);
    },
  });
  const registry = options.registry ?? null;
  const security = new Security({ ...options.security, log });
  let closing = false;
  const serve = async (endpointAsked: string, admin: boolean) => {
    const { socket, endpoint, authenticated } = await security.bindRouter(endpointAsked, admin ? "admin" : "serving", ROUTER_OPTIONS);
    // ipc:// is guarded by the file system; tcp:// takes admin messages only when told to.
    const front = new RegistryFront({ handler, registry, admin: admin || endpoint.startsWith("ipc://") || !!options.devAdmin, log });
    const outbox = new Outbox(socket, log, () => closing);
    const done = (async () => {
      try {
        for await (const frames of socket) {
          const pending = replyFrames(front, frames, log, authenticated);
          const reply = pending instanceof Promise ? await pending : pending;
          if (reply) outbox.push(reply);
          // Let queued replies and timers run between requests.
          if (outbox.waiting) await outbox.flush();
        }
      } catch (err) {
        if (!closing) throw err;
      }
    })();
    return { socket, endpoint, done, ipcPath: ipcFilePath(endpoint) };
  };
  let main, adminSide;
  try {
    main = await serve(options.endpoint, false);
    adminSide = options.adminEndpoint ? await serve(options.adminEndpoint, true) : null;
  } catch (err) {
    closing = true;
    main?.socket.close();
    await security.close();
    throw err;
  }
  const sides = adminSide ? [main, adminSide] : [main];
  const done = Promise.all(sides.map((side) => side.done)).then(() => {});

  return {
    endpoint: main.endpoint,
    adminEndpoint: adminSide?.endpoint,
    done,
    handler,
    async close() {
      if (closing) return done;
      closing = true;
      for (const side of sides) side.socket.close();
      await done.catch(() => {});
      await security.close();
      for (const side of sides) if (side.ipcPath) removeQuietly(side.ipcPath);
    },
    reloadKeys: () => security.reload(),
  };
}

/** One incoming message → the reply frames (same envelope head), or null for one that gets none (a heartbeat). Never rejects. */
function replyFrames(front: RegistryFront, frames: Buffer[], log: (line: string) => void, authenticated: boolean): Buffer[] | null | Promise<Buffer[] | null> {
  const split = splitFrames(frames);
  if ("malformed" in split) return [...split.head, encodeBody(errorReply(null, "BAD_FRAME", split.malformed))];
  const peer = split.head[0].toString("hex");
  const frame = (handled: Handled & { bytes: Buffer }): Buffer[] | null => {
    if (handled.silent) return null;
    if (handled.reply.type === "opened") {
      const spec = handled.request?.type === "open" ? handled.request.spec : handled.reply.canonical;
      const specType = spec && typeof (spec as { type?: unknown }).type === "string" ? (spec as { type: string }).type : "?";
      log(`${new Date().toISOString()} open peer=${peer} type=${specType} spec=${handled.reply.spec_hash.slice(0, 12)} groups=${handled.reply.groups}`);
    }
    return [...split.head, handled.bytes];
  };
  const handled = front.handleBytes(split.body, peer, authenticated);
  return handled instanceof Promise ? handled.then(frame) : frame(handled);
}

/**
 * Replies in order per peer. zeromq.js allows one send at a time, and with
 * `mandatory` a peer whose libzmq queue is full answers EAGAIN at once: its
 * replies wait here, up to PEER_OUTBOX_BYTES, and are retried when the loop
 * comes round again or on a short timer. A peer that reads gets every reply;
 * one that never reads costs at most SEND_HWM replies plus its outbox bytes.
 */
export class Outbox {
  private readonly queues = new Map<string, { replies: Buffer[][]; bytes: number }>();
  private running: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  /** The peer whose first reply is being sent now: that one reply stays. */
  private sending: string | null = null;
  private totalBytes = 0;

  constructor(
    private readonly socket: Pick<Router, "send">,
    private readonly log: (line: string) => void,
    private readonly closing: () => boolean,
    private readonly peerBytes = PEER_OUTBOX_BYTES,
    private readonly maxBytes = OUTBOX_BYTES,
  ) {}

  get waiting(): boolean {
    return this.queues.size > 0;
  }

  /** Reply bytes waiting, all peers together. */
  get bytes(): number {
    return this.totalBytes;
  }

  /** Peers with replies waiting. */
  get peers(): number {
    return this.queues.size;
  }

  push(reply: Buffer[]): void {
    const peer = reply[0].toString("latin1");
    const size = reply.reduce((n, f) => n + f.length, 0);
    let queue = this.queues.get(peer);
    if (!queue) this.queues.set(peer, (queue = { replies: [], bytes: 0 }));
    if (queue.replies.length > 0 && queue.bytes + size > this.peerBytes) {
      this.log(`${new Date().toISOString()} peer=${reply[0].toString("hex")} is not reading: reply of ${size} bytes dropped`);
      return;
    }
    queue.replies.push(reply);
    queue.bytes += size;
    this.totalBytes += size;
    if (this.totalBytes > this.maxBytes) this.shed();
    void this.flush();
  }

  /** Drops what the heaviest peers have waiting until the total is within budget. */
  private shed(): void {
    while (this.totalBytes > this.maxBytes) {
      let heaviest: [string, { replies: Buffer[][]; bytes: number }] | undefined;
      for (const entry of this.queues) {
        const [peer, queue] = entry;
        const droppable = peer === this.sending ? queue.replies.length > 1 : queue.replies.length > 0;
        if (droppable && (!heaviest || queue.bytes > heaviest[1].bytes)) heaviest = entry;
      }
      if (!heaviest) return;
      const [peer, queue] = heaviest;
      const dropped = queue.replies.splice(peer === this.sending ? 1 : 0);
      const bytes = dropped.reduce((n, r) => n + r.reduce((m, f) => m + f.length, 0), 0);
      queue.bytes -= bytes;
      this.totalBytes -= bytes;
      if (queue.replies.length === 0) this.queues.delete(peer);
      this.log(`${new Date().toISOString()} peer=${Buffer.from(peer, "latin1").toString("hex")} is not reading: ${dropped.length} waiting replies (${bytes} bytes) dropped, replies waiting for all peers are over ${this.maxBytes} bytes`);
    }
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
        this.sending = peer;
        try {
          await this.socket.send(reply);
        } catch (err) {
          if (this.closing()) return;
          const code = (err as { code?: string }).code;
          if (code === "EAGAIN") break; // full: try this peer again later
          // Gone (EHOSTUNREACH) or broken: its replies are lost, others are not.
          this.log(`${new Date().toISOString()} send failed: ${err instanceof Error ? err.message : String(err)}`);
          this.totalBytes -= queue.bytes;
          queue.replies.length = 0;
          queue.bytes = 0;
          break;
        } finally {
          this.sending = null;
        }
        const size = reply.reduce((n, f) => n + f.length, 0);
        queue.replies.shift();
        queue.bytes -= size;
        this.totalBytes -= size;
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
