/** `lrbridge serve`: parse options, serve until SIGINT/SIGTERM, exit 0. */
import { bind } from "../bind";
import { loadSandbox } from "../modules";
import { DEFAULT_CACHE_BYTES, DEFAULT_CACHE_SIZE } from "../server/handler";
import { startServer } from "../server/server";

const DEFAULT_ENDPOINT = "tcp://127.0.0.1:5555";

const USAGE = `usage: lrbridge serve [--bind ENDPOINT] [--cache N] [--cache-mib M] [--exit-on-stdin-eof]

  --bind ENDPOINT  tcp://HOST:PORT (port 0 picks a free port) or ipc://PATH
                   (default ${DEFAULT_ENDPOINT})
  --cache N        how many bound schedules to keep (LRU, default ${DEFAULT_CACHE_SIZE})
  --cache-mib M    memory budget of those schedules, estimated, in MiB
                   (default ${DEFAULT_CACHE_BYTES / 2 ** 20})
  --exit-on-stdin-eof
                   shut down when stdin closes: a server embedded in a training
                   process dies with it, however that process ends

Prints "lrbridge serving on <endpoint>" to stdout once bound.
`;

export interface ServeArgs {
  endpoint: string;
  cacheSize: number;
  cacheBytes: number;
  exitOnStdinEof: boolean;
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
      default:
        return { error: `unknown option ${args[i]}` };
    }
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
  await loadSandbox(); // schedule modules bind synchronously once it is loaded
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

  // Clients that start a server wait for this exact line; stdout to a pipe is synchronous on Linux.
  process.stdout.write(`lrbridge serving on ${server.endpoint}\n`);
  await server.done;
  if (stopping) await stopping;
  return 0;
}
