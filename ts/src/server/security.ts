/**
 * Who may talk to an endpoint. Every ROUTER the server binds (the serving
 * endpoint, the admin endpoint) is made by `Security.bindRouter`, so one set
 * of rules covers them all:
 *
 * - `tcp://` with a server key: CURVE (encrypted, and the peer proves it holds
 *   a secret key), and a ZAP handler admits only the public keys in that
 *   endpoint's allow-list. The endpoints are told apart by their ZAP domain:
 *   zeromq.js cannot say which key sent a given message, so a role is a
 *   separate endpoint with its own list.
 * - `tcp://` without a key: only on loopback, unless `insecure` (then with a
 *   warning): anyone who can reach the port could open, stall or read.
 * - `ipc://`: the file system decides who may connect.
 *
 * Peers of a CURVE or ipc endpoint count as authenticated (`stats` shows them
 * who opened what); others are not.
 */
import { Context, Router } from "zeromq";
import type { SocketOptions } from "zeromq";
import { CertificateError, readPublicKeys, readSecretCertificate, z85Encode } from "./certs";

export type EndpointRole = "serving" | "admin";

export interface SecurityOptions {
  /** The server's secret certificate (`.key_secret`): CURVE on every tcp endpoint. */
  curveSecret?: string;
  /** Directory of `*.key` client public keys admitted on the serving endpoint. */
  allow?: string;
  /** Directory of `*.key` client public keys admitted on the admin endpoint. */
  adminAllow?: string;
  /** Serve tcp beyond loopback without CURVE (warns at start). */
  insecure?: boolean;
  log?: (line: string) => void;
}

/** The server must not start with these options (the CLI exits 2 with the message). */
export class SecurityError extends Error {}

export interface BoundRouter {
  socket: Router;
  /** The endpoint actually bound (the real port when 0 was asked for). */
  endpoint: string;
  /** Every peer proved who it is (CURVE with an allow-list) or passed the file system (ipc). */
  authenticated: boolean;
}

/** The ZAP endpoint libzmq asks (RFC 27), in the context of the sockets it guards. */
const ZAP_ENDPOINT = "inproc://zeromq.zap.01";
const ZAP_VERSION = "1.0";
const DOMAIN_PREFIX = "lrbridge-";
/** Distinct rejected keys logged; past this, rejections are counted, not logged. */
const MAX_REJECTIONS_LOGGED = 256;

const ALLOW_FLAG: Record<EndpointRole, string> = { serving: "--allow", admin: "--admin-allow" };

export class Security {
  /** Sockets the server binds live here, with the ZAP handler that guards them. */
  readonly context = new Context({ blocky: false });
  private readonly secretKey: string | null;
  private readonly allowLists = new Map<EndpointRole, Map<string, string>>();
  private zap: Router | null = null;
  private zapDone: Promise<void> | null = null;
  private readonly rejected = new Set<string>();
  private closed = false;
  private readonly log: (line: string) => void;

  /** Reads the key files; throws SecurityError when they are unusable or inconsistent. */
  constructor(private readonly options: SecurityOptions = {}) {
    this.log = options.log ?? (() => {});
    if (!options.curveSecret && (options.allow || options.adminAllow)) {
      throw new SecurityError("--allow and --admin-allow need --curve-secret FILE (the server's .key_secret)");
    }
    this.secretKey = options.curveSecret ? wrapped(() => readSecretCertificate(options.curveSecret!).secretKey) : null;
    this.loadAllowLists();
  }

  /** Whether tcp endpoints use CURVE. */
  get curve(): boolean {
    return this.secretKey !== null;
  }

  /**
   * Creates a ROUTER with `socketOptions` for `role`, secured as the module
   * doc says, and binds it. Throws SecurityError for a bind these options do
   * not allow (before binding anything).
   */
  async bindRouter(endpoint: string, role: EndpointRole, socketOptions: SocketOptions<Router> = {}): Promise<BoundRouter> {
    const tcp = endpoint.startsWith("tcp://");
    let authenticated = !tcp;
    const secured: SocketOptions<Router> = { ...socketOptions, context: this.context };
    if (tcp && this.secretKey !== null) {
      if (!this.allowLists.has(role)) {
        throw new SecurityError(`CURVE on the ${role} endpoint ${endpoint} needs ${ALLOW_FLAG[role]} DIR (the client public keys it admits)`);
      }
      await this.startZap();
      Object.assign(secured, { curveServer: true, curveSecretKey: this.secretKey, zapDomain: DOMAIN_PREFIX + role });
      authenticated = true;
    } else if (tcp && !isLoopbackEndpoint(endpoint)) {
      if (!this.options.insecure) {
        throw new SecurityError(
          `refusing to serve ${endpoint} without authentication: anyone who can reach it could open, stall or read ` +
            `any schedule. Give --curve-secret FILE and ${ALLOW_FLAG[role]} DIR (lrbridge keys makes them), ` +
            `bind to 127.0.0.1, or pass --insecure on a network you trust`,
        );
      }
      this.log(`${new Date().toISOString()} WARNING: --insecure: the ${role} endpoint ${endpoint} is unauthenticated and unencrypted`);
    }
    const socket = new Router(secured);
    try {
      await socket.bind(endpoint);
    } catch (err) {
      socket.close();
      throw err;
    }
    return { socket, endpoint: socket.lastEndpoint ?? endpoint, authenticated };
  }

  /** Re-reads the allow-list directories (SIGHUP): a removed key is refused from its next handshake on. */
  reload(): void {
    try {
      this.loadAllowLists();
      const sizes = [...this.allowLists].map(([role, keys]) => `${role} ${keys.size}`).join(", ");
      this.log(`${new Date().toISOString()} allow-lists reloaded: ${sizes || "none"}`);
    } catch (err) {
      this.log(`${new Date().toISOString()} allow-lists kept as they were: ${(err as Error).message}`);
    }
  }

  /** Stops the ZAP handler (after the sockets it guards are closed). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.zap?.close();
    await this.zapDone?.catch(() => {});
  }

  private loadAllowLists(): void {
    const lists = new Map<EndpointRole, Map<string, string>>();
    for (const role of ["serving", "admin"] as EndpointRole[]) {
      const dir = role === "serving" ? this.options.allow : this.options.adminAllow;
      if (!dir) continue;
      const keys = wrapped(() => readPublicKeys(dir));
      if (keys.size === 0) throw new SecurityError(`${ALLOW_FLAG[role]} ${dir} holds no *.key files: nobody could connect`);
      lists.set(role, keys);
    }
    this.allowLists.clear();
    for (const [role, keys] of lists) this.allowLists.set(role, keys);
  }

  private async startZap(): Promise<void> {
    if (this.zap) return;
    const zap = new Router({ context: this.context, linger: 0 });
    await zap.bind(ZAP_ENDPOINT);
    this.zap = zap;
    this.zapDone = (async () => {
      try {
        for await (const request of zap) await zap.send(this.answer(request));
      } catch (err) {
        if (!this.closed) this.log(`${new Date().toISOString()} ZAP handler stopped: ${(err as Error).message}`);
      }
    })();
  }

  /** One ZAP 1.0 request (RFC 27) → the reply frames: 200 for an allowed CURVE key of that domain, else 400. */
  private answer(frames: Buffer[]): Buffer[] {
    // [routing id, "", version, request id, domain, address, identity, mechanism, credentials...]
    const [routing, , version, requestId, domainFrame, address, , mechanism, credential] = frames;
    const reply = (status: string, text: string, userId = "") =>
      [routing, Buffer.alloc(0), Buffer.from(ZAP_VERSION), requestId ?? Buffer.alloc(0), Buffer.from(status), Buffer.from(text), Buffer.from(userId), Buffer.alloc(0)];
    if (frames.length < 8 || version?.toString() !== ZAP_VERSION) return reply("500", "bad ZAP request");
    const domain = domainFrame.toString();
    const role = domain.startsWith(DOMAIN_PREFIX) ? (domain.slice(DOMAIN_PREFIX.length) as EndpointRole) : null;
    const allowed = role ? this.allowLists.get(role) : undefined;
    if (mechanism.toString() !== "CURVE" || !credential || credential.length !== 32 || !allowed) {
      return reply("400", "CURVE with an allowed key required");
    }
    const key = z85Encode(credential);
    const name = allowed.get(key);
    if (name !== undefined) return reply("200", "OK", name);
    if (this.rejected.size < MAX_REJECTIONS_LOGGED && !this.rejected.has(`${domain} ${key}`)) {
      this.rejected.add(`${domain} ${key}`);
      this.log(`${new Date().toISOString()} refused key ${key} from ${address.toString()} on the ${role} endpoint: not in ${ALLOW_FLAG[role!]}`);
    }
    return reply("400", "key not allowed");
  }
}

/**
 * A tcp endpoint whose host is loopback: 127.0.0.0/8, ::1 or localhost.
 * Anything else (0.0.0.0, *, an interface name, a hostname) may be reachable
 * from elsewhere.
 */
export function isLoopbackEndpoint(endpoint: string): boolean {
  const match = /^tcp:\/\/(.*):[^:]+$/.exec(endpoint);
  if (!match) return false;
  const host = match[1].replace(/^\[(.*)\]$/, "$1").toLowerCase();
  return host === "localhost" || host === "::1" || /^(::ffff:)?127(\.\d{1,3}){3}$/.test(host);
}

function wrapped<T>(read: () => T): T {
  try {
    return read();
  } catch (err) {
    if (err instanceof CertificateError) throw new SecurityError(err.message);
    throw err;
  }
}
