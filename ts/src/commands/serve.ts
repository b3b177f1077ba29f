/** `lrbridge serve`: parse options, serve until SIGINT/SIGTERM, exit 0. */
import { bind } from "../bind";
import { loadSandbox } from "../modules";
import { DEFAULT_CACHE_BYTES, DEFAULT_CACHE_SIZE } from "../server/handler";
import { SecurityError } from "../server/security";
import { startServer } from "../server/server";
import { defaultRegistryPath } from "../registry/location";
import { Registry } from "../registry/registry";
import { openStore } from "../registry/store";
import { isLoopback } from "../live/http";
import { registryView } from "../live/registry";
import { StoredRunTable } from "../live/stored_runs";

const DEFAULT_ENDPOINT = "tcp://127.0.0.1:5555";

const USAGE = `usage: lrbridge serve [--bind ENDPOINT] [--cache N] [--cache-mib M] [--exit-on-stdin-eof]
                     [--registry PATH|postgres://…|default] [--admin ENDPOINT] [--dev-admin]
                     [--curve-secret FILE --allow DIR [--admin-allow DIR]] [--insecure]
                     [--http HOST:PORT [--http-token TOKEN]]
                     [--watch DIR [--watch-namespace NS]]

  --bind ENDPOINT  tcp://HOST:PORT (port 0 picks a free port) or ipc://PATH
                   (default ${DEFAULT_ENDPOINT})
  --cache N        how many bound schedules to keep (LRU, default ${DEFAULT_CACHE_SIZE})
  --cache-mib M    memory budget of those schedules, estimated, in MiB
                   (default ${DEFAULT_CACHE_BYTES / 2 ** 20})
  --exit-on-stdin-eof
                   shut down when stdin closes: a server embedded in a training
                   process dies with it, however that process ends
  --curve-secret FILE
                   the server's secret certificate (lrbridge keys DIR server):
                   tcp endpoints use CURVE and admit only allowed client keys
  --allow DIR      client public keys (*.key) admitted on the serving endpoint
  --admin-allow DIR
                   client public keys admitted on the admin endpoint
                   (SIGHUP re-reads both directories)
  --insecure       allow a tcp bind beyond loopback without CURVE (warns)

  --registry STORE named, versioned schedules: a SQLite file, a postgres:// URL,
                   or "default" (${defaultRegistryPath()})
  --admin ENDPOINT a second endpoint that takes publish and alias
  --dev-admin      the serving endpoint takes them too, even on tcp:// (local development)

  --http HOST:PORT the live view on the web (read-only), e.g. 127.0.0.1:8080;
                   port 0 picks a free one. A host that is not loopback needs
  --http-token TOKEN (or LRBRIDGE_HTTP_TOKEN): requests without it get 401

  --watch DIR      publish DIR/NAME.ts as NS/NAME (with --registry) at start
                   and again on every save; DIR/NAME.params.json, when present,
                   holds the params it is probed with
  --watch-namespace NS
                   the namespace of those names (default local)

A tcp bind that is not loopback refuses to start without --curve-secret.
Prints "lrbridge serving on <endpoint>" to stdout once bound (with --admin,
"lrbridge admin on <endpoint>" to stderr before it; with --http,
"lrbridge web view on <url>" to stderr).
`;

export interface ServeArgs {
  endpoint: string;
  cacheSize: number;
  cacheBytes: number;
  exitOnStdinEof: boolean;
  curveSecret?: string;
  allow?: string;
  adminAllow?: string;
  insecure?: true;
  registry?: string;
  admin?: string;
  devAdmin?: boolean;
  http?: { host: string; port: number; token?: string };
  watch?: string;
  watchNamespace?: string;
}

/** Parses `serve` options; returns a usage message instead when they are wrong. */
export function parseServeArgs(args: string[]): ServeArgs | { error: string } | { help: true } {
  const parsed: ServeArgs = {
    endpoint: DEFAULT_ENDPOINT,
    cacheSize: DEFAULT_CACHE_SIZE,
    cacheBytes: DEFAULT_CACHE_BYTES,
    exitOnStdinEof: false,
  };
  for (let i = 0; i < args.length; i++) {
    const [flag, inline] = args[i].split(/=(.*)/s, 2);
    const value = () => inline ?? args[++i];
    switch (flag) {
      case "-h":
      case "--help":
        return { help: true };
      case "--bind": {
        const endpoint = value();
        if (!endpoint || !/^(tcp|ipc):\/\/.+/.test(endpoint)) return { error: `--bind needs tcp://HOST:PORT or ipc://PATH, got ${endpoint}` };
        parsed.endpoint = endpoint;
        break;
      }
      case "--cache": {
        const text = value();
        const n = Number(text);
        if (!Number.isSafeInteger(n) || n < 1) return { error: `--cache needs an integer >= 1, got ${text}` };
        parsed.cacheSize = n;
        break;
      }
      case "--cache-mib": {
        const text = value();
        const n = Number(text);
        if (!Number.isFinite(n) || n < 1) return { error: `--cache-mib needs a number >= 1, got ${text}` };
        parsed.cacheBytes = Math.floor(n * 2 ** 20);
        break;
      }
      case "--exit-on-stdin-eof":
        parsed.exitOnStdinEof = true;
        break;
      case "--curve-secret":
      case "--allow":
      case "--admin-allow": {
        const path = value();
        if (!path) return { error: `${flag} needs a path` };
        parsed[flag === "--curve-secret" ? "curveSecret" : flag === "--allow" ? "allow" : "adminAllow"] = path;
        break;
      }
      case "--insecure":
        parsed.insecure = true;
        break;
      case "--registry": {
        const where = value();
        if (!where) return { error: "--registry needs a file path, a postgres:// URL or default" };
        parsed.registry = where === "default" ? defaultRegistryPath() : where;
        break;
      }
      case "--admin": {
        const endpoint = value();
        if (!endpoint || !/^(tcp|ipc):\/\/.+/.test(endpoint)) return { error: `--admin needs tcp://HOST:PORT or ipc://PATH, got ${endpoint}` };
        parsed.admin = endpoint;
        break;
      }
      case "--dev-admin":
        parsed.devAdmin = true;
        break;
      case "--http": {
        const text = value() ?? "";
        const match = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(text);
        if (!match || Number(match[2]) > 65535) return { error: `--http needs HOST:PORT (e.g. 127.0.0.1:8080), got ${text}` };
        parsed.http = { ...parsed.http, host: match[1].replace(/^\[|\]$/g, ""), port: Number(match[2]) };
        break;
      }
      case "--http-token": {
        const token = value();
        if (!token) return { error: "--http-token needs a value" };
        parsed.http = { host: "", port: -1, ...parsed.http, token };
        break;
      }
      case "--watch": {
        const dir = value();
        if (!dir) return { error: "--watch needs a directory" };
        parsed.watch = dir;
        break;
      }
      case "--watch-namespace": {
        const ns = value();
        if (!ns || !/^[a-z0-9][a-z0-9._-]{0,63}$/.test(ns)) return { error: `--watch-namespace needs a namespace ([a-z0-9][a-z0-9._-]{0,63}), got ${ns}` };
        parsed.watchNamespace = ns;
        break;
      }
      default:
        return { error: `unknown option ${args[i]}` };
    }
  }
  if (parsed.http && parsed.http.port < 0) return { error: "--http-token needs --http HOST:PORT" };
  if (parsed.http && !parsed.http.token && process.env.LRBRIDGE_HTTP_TOKEN) parsed.http.token = process.env.LRBRIDGE_HTTP_TOKEN;
  if (parsed.http && !parsed.http.token && !isLoopback(parsed.http.host)) {
    return { error: `--http ${parsed.http.host} is not a loopback address: give --http-token TOKEN` };
  }
  return parsed;
}

export async function run(args: string[]): Promise<number> {
  const parsed = parseServeArgs(args);
  if ("help" in parsed) {
    process.stdout.write(USAGE);
    return 0;
  }
  if ("error" in parsed) {
    process.stderr.write(`lrbridge serve: ${parsed.error}\n${USAGE}`);
    return 2;
  }
  const log = (line: string) => process.stderr.write(`${line}\n`);
  if ((parsed.admin || parsed.devAdmin) && !parsed.registry) {
    process.stderr.write(`lrbridge serve: --admin and --dev-admin need --registry\n${USAGE}`);
    return 2;
  }
  if ((parsed.watch || parsed.watchNamespace) && !(parsed.watch && parsed.registry)) {
    process.stderr.write(`lrbridge serve: --watch needs --registry (and --watch-namespace needs --watch)\n${USAGE}`);
    return 2;
  }
  const registry = parsed.registry ? await openRegistry(parsed.registry, log) : undefined;
  if (registry === null) return 1;
  const runs = registry ? await openRuns(registry, log) : undefined;
  if (runs === null) return 1;
  await loadSandbox(); // schedule modules bind synchronously once it is loaded
  let watcher: { close(): void } | undefined;
  if (parsed.watch && registry) {
    const { watchModules, DEFAULT_WATCH_NAMESPACE } = await import("../modules/watch"); // loads the TypeScript compiler
    try {
      const w = watchModules(parsed.watch, parsed.watchNamespace ?? DEFAULT_WATCH_NAMESPACE, registry, log);
      watcher = w;
      await w.scan();
    } catch (err) {
      process.stderr.write(`lrbridge serve: --watch ${parsed.watch}: ${err instanceof Error ? err.message : String(err)}\n`);
      await registry.store.close();
      return 1;
    }
  }
  const security = { curveSecret: parsed.curveSecret, allow: parsed.allow, adminAllow: parsed.adminAllow, insecure: parsed.insecure };
  let server;
  try {
    server = await startServer({
      endpoint: parsed.endpoint,
      cacheSize: parsed.cacheSize,
      cacheBytes: parsed.cacheBytes,
      bind,
      log,
      security,
      registry,
      runs,
      adminEndpoint: parsed.admin,
      devAdmin: parsed.devAdmin,
    });
  } catch (err) {
    watcher?.close();
    if (!(err instanceof SecurityError)) throw err;
    process.stderr.write(`lrbridge serve: ${err.message}\n`);
    return 2;
  }
  if (server.adminEndpoint) log(`lrbridge admin on ${server.adminEndpoint}`);
  // Only with keys: otherwise a hangup still ends a server started from a terminal, as before.
  if (parsed.curveSecret) process.on("SIGHUP", () => server.reloadKeys());

  let stopping: Promise<void> | null = null;
  const stop = (signal: string) => {
    if (stopping) return;
    log(`${new Date().toISOString()} ${signal}: shutting down`);
    stopping = server.close();
  };
  process.once("SIGINT", () => stop("SIGINT"));
  process.once("SIGTERM", () => stop("SIGTERM"));
  if (parsed.exitOnStdinEof) {
    process.stdin.on("end", () => stop("stdin closed"));
    process.stdin.on("error", () => stop("stdin closed"));
    process.stdin.resume();
  }

  let web: { close(): Promise<void> } | null = null;
  if (parsed.http) {
    const { startHttp } = await import("../live/http");
    const http = await startHttp({ ...parsed.http, handler: server.handler, registry: registry && registryView(registry) });
    web = http;
    log(`lrbridge web view on ${http.url}`);
  }
  // Clients that start a server wait for this exact line; stdout to a pipe is synchronous on Linux.
  process.stdout.write(`lrbridge serving on ${server.endpoint}\n`);
  await server.done;
  watcher?.close();
  if (web) await web.close();
  if (stopping) await stopping;
  await runs?.close();
  await registry?.store.close();
  return 0;
}

/** The live view's runs, kept in the registry's store (null, and a message, when it cannot be read). */
async function openRuns(registry: Registry, log: (line: string) => void): Promise<StoredRunTable | null> {
  try {
    return await StoredRunTable.open(registry.store, { log });
  } catch (err) {
    process.stderr.write(`lrbridge serve: the registry's runs cannot be read: ${err instanceof Error ? err.message : String(err)}\n`);
    return null;
  }
}

/** The store a --registry names, or null (and a message) when it cannot be opened. */
async function openRegistry(where: string, log: (line: string) => void): Promise<Registry | null> {
  try {
    return new Registry(await openStore(where), { bind, log });
  } catch (err) {
    process.stderr.write(`lrbridge serve: --registry ${redact(where)}: ${err instanceof Error ? err.message : String(err)}\n`);
    return null;
  }
}

/** A postgres URL without its password, for messages. */
export function redact(where: string): string {
  return where.replace(/(:\/\/[^:/@]*:)[^@]*@/, "$1***@");
}
