/** `lrbridge serve`: parse options, serve until SIGINT/SIGTERM, exit 0. */
import { bind } from "../bind";
import { DEFAULT_CACHE_BYTES, DEFAULT_CACHE_SIZE } from "../server/handler";
import { startServer } from "../server/server";
import { isLoopback } from "../live/http";

const DEFAULT_ENDPOINT = "tcp://127.0.0.1:5555";

const USAGE = `usage: lrbridge serve [--bind ENDPOINT] [--cache N] [--cache-mib M] [--exit-on-stdin-eof]
                     [--http HOST:PORT [--http-token TOKEN]]

  --bind ENDPOINT  tcp://HOST:PORT (port 0 picks a free port) or ipc://PATH
                   (default ${DEFAULT_ENDPOINT})
  --cache N        how many bound schedules to keep (LRU, default ${DEFAULT_CACHE_SIZE})
  --cache-mib M    memory budget of those schedules, estimated, in MiB
                   (default ${DEFAULT_CACHE_BYTES / 2 ** 20})
  --exit-on-stdin-eof
                   shut down when stdin closes: a server embedded in a training
                   process dies with it, however that process ends
  --http HOST:PORT the live view on the web (read-only), e.g. 127.0.0.1:8080;
                   port 0 picks a free one. A host that is not loopback needs
  --http-token TOKEN (or LRBRIDGE_HTTP_TOKEN): requests without it get 401

Prints "lrbridge serving on <endpoint>" to stdout once bound, and
"lrbridge web view on <url>" to stderr with --http.
`;

export interface ServeArgs {
  endpoint: string;
  cacheSize: number;
  cacheBytes: number;
  exitOnStdinEof: boolean;
  http?: { host: string; port: number; token?: string };
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
  const server = await startServer({ endpoint: parsed.endpoint, cacheSize: parsed.cacheSize, cacheBytes: parsed.cacheBytes, bind, log });

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
    const http = await startHttp({ ...parsed.http, handler: server.handler });
    web = http;
    log(`lrbridge web view on ${http.url}`);
  }
  // Clients that start a server wait for this exact line; stdout to a pipe is synchronous on Linux.
  process.stdout.write(`lrbridge serving on ${server.endpoint}\n`);
  await server.done;
  if (web) await web.close();
  if (stopping) await stopping;
  return 0;
}
