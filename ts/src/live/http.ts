/**
 * The live view on the web: `lrbridge serve --http HOST:PORT`. node:http,
 * read-only (GET and HEAD only), JSON under /api, Server-Sent Events for
 * live updates, static pages whose script renders every value with
 * textContent (a run named `<script>` stays text). A non-loopback bind needs
 * a token; requests without it get 401.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { join } from "node:path";
import type { Handler } from "../server/handler";
import type { RunRow } from "./runs";
import { type RegistryView, registryOverlay } from "./registry";

export interface HttpOptions {
  host: string;
  port: number;
  /** Required unless host is loopback. */
  token?: string;
  handler: Handler;
  registry?: RegistryView;
  /** How often SSE clients are told about changes (ms). */
  pushMs?: number;
}

export interface RunningHttp {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

export function isLoopback(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, "");
  if (bare === "localhost") return true;
  if (isIP(bare) === 4) return bare.startsWith("127.");
  return bare === "::1";
}

/** Most rows a planned curve covers, and most points it sends (strided beyond). */
const MAX_PLANNED_ROWS = 200_000;
const MAX_POINTS = 4000;
const PLANNED_CACHE = 64;

const PAGES: Record<string, { title: string; page: string }> = {
  "/": { title: "lrbridge · runs", page: "runs" },
  "/run": { title: "lrbridge · run", page: "run" },
  "/registry": { title: "lrbridge · registry", page: "registry" },
};

function shell(title: string, page: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/assets/uPlot.min.css"><link rel="stylesheet" href="/assets/app.css">
</head><body data-page="${page}">
<header><a href="/" class="brand">lrbridge</a><nav><a href="/">runs</a><a href="/registry">registry</a></nav><span id="status">connecting…</span></header>
<main id="main"></main>
<script src="/assets/uPlot.iife.min.js"></script><script src="/assets/app.js"></script>
</body></html>
`;
}

const ASSET_TYPES: Record<string, string> = { ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8" };
const ASSETS = ["app.js", "app.css", "uPlot.iife.min.js", "uPlot.min.css"];

/**
 * Built assets are copied next to this file (dist/live/assets) at build
 * time; from a source checkout they are read where they live.
 */
function loadAsset(name: string): Buffer {
  const candidates: string[] = [
    join(__dirname, "assets", name),
    join(__dirname, "..", "..", "web", name), // dist/live → the checkout's web/
    join(__dirname, "..", "..", "..", "web", name), // ts/src/live (tests run the sources)
    name.startsWith("uPlot") ? join(require.resolve("uplot/package.json"), "..", "dist", name) : "",
  ];
  for (const path of candidates) {
    if (!path) continue;
    try {
      return readFileSync(path);
    } catch {
      // next place
    }
  }
  throw new Error(`web asset ${name} is missing (looked in ${candidates.filter(Boolean).join(", ")})`);
}

export async function startHttp(options: HttpOptions): Promise<RunningHttp> {
  if (!isLoopback(options.host) && !options.token) {
    throw new Error(`--http ${options.host} is not a loopback address: give --http-token TOKEN (requests without it get 401)`);
  }
  const assets = new Map(ASSETS.map((name) => [name, loadAsset(name)]));
  const token = options.token ? Buffer.from(options.token) : null;
  const handler = options.handler;
  const now = () => Date.now() / 1000;
  const planned = new Map<string, unknown>();
  const listeners = new Set<ServerResponse>();

  function authorized(req: IncomingMessage, url: URL): boolean {
    if (!token) return true;
    const header = req.headers.authorization ?? "";
    const given = header.startsWith("Bearer ") ? header.slice(7) : (url.searchParams.get("token") ?? "");
    const bytes = Buffer.from(given);
    return bytes.length === token.length && timingSafeEqual(bytes, token);
  }

  function send(res: ServerResponse, status: number, type: string, body: string | Buffer): void {
    res.writeHead(status, {
      "content-type": type,
      "cache-control": "no-store",
      "x-content-type-options": "nosniff",
      "referrer-policy": "no-referrer",
      "x-frame-options": "DENY",
      // Scripts only from here: nothing a run name or a spec string holds can run.
      "content-security-policy":
        "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    });
    res.end(body);
  }
  const json = (res: ServerResponse, status: number, value: unknown) => send(res, status, "application/json; charset=utf-8", JSON.stringify(value));

  function plannedCurve(run: RunRow): unknown {
    if (run.kind === "metric") return null;
    const end = Math.min(MAX_PLANNED_ROWS, run.total !== null ? run.total + 1 : Math.max(1000, Math.ceil(run.step * 1.5) + 1));
    const key = `${run.hash}:${end}`;
    const cached = planned.get(key);
    if (cached !== undefined) return cached;
    let rows;
    try {
      rows = handler.plannedRows(run.hash, 0, end);
    } catch (err) {
      return { error: err instanceof Error ? err.message : String(err) };
    }
    if (!rows) return null;
    const count = rows.lr.length / rows.groups;
    const stride = Math.max(1, Math.ceil(count / MAX_POINTS));
    const steps: number[] = [];
    for (let k = 0; k < count; k += stride) steps.push(k);
    if (steps[steps.length - 1] !== count - 1) steps.push(count - 1);
    const pick = (values: number[]) => Array.from({ length: rows.groups }, (_, g) => steps.map((k) => values[k * rows.groups + g]));
    const curve = { steps, lr: pick(rows.lr), momentum: rows.momentum ? pick(rows.momentum) : null, row_end: rows.rowEnd, stride };
    planned.set(key, curve);
    if (planned.size > PLANNED_CACHE) planned.delete(planned.keys().next().value as string);
    return curve;
  }

  async function api(path: string, url: URL, res: ServerResponse): Promise<void> {
    if (path === "/api/runs") return json(res, 200, { now: now(), runs: handler.runs.list(now()) });
    if (path.startsWith("/api/run/")) {
      const id = decodeURIComponent(path.slice("/api/run/".length));
      const run = handler.runs.get(id, now());
      if (!run) return json(res, 404, { error: `no run ${id}` });
      return json(res, 200, { now: now(), run, planned: plannedCurve(run) });
    }
    if (path === "/api/registry") {
      if (!options.registry) return json(res, 200, { available: false, reason: "no registry store is configured on this server" });
      const name = url.searchParams.get("name");
      if (!name) return json(res, 200, { available: true, names: await options.registry.names() });
      return json(res, 200, { available: true, history: await options.registry.history(name) });
    }
    if (path === "/api/registry/overlay") {
      if (!options.registry) return json(res, 404, { error: "no registry store is configured on this server" });
      const a = url.searchParams.get("a") ?? "";
      const b = url.searchParams.get("b") ?? "";
      const steps = Math.min(MAX_PLANNED_ROWS, Math.max(1, Number(url.searchParams.get("steps") ?? 1000) || 1000));
      return json(res, 200, await registryOverlay(options.registry, a, b, steps));
    }
    return json(res, 404, { error: "no such resource" });
  }

  function events(res: ServerResponse): void {
    res.writeHead(200, {
      "content-type": "text/event-stream",
      "cache-control": "no-store",
      connection: "keep-alive",
      "x-content-type-options": "nosniff",
    });
    res.write("retry: 2000\n\n");
    listeners.add(res);
    push(res);
    res.on("close", () => listeners.delete(res));
  }

  function push(res: ServerResponse): void {
    res.write(`event: runs\ndata: ${JSON.stringify({ now: now(), runs: handler.runs.list(now()) })}\n\n`);
  }

  // Only while someone watches: the list is rebuilt when it changed, or each
  // few seconds for ages and lost states.
  let lastRevision = -1;
  let lastPush = 0;
  const timer = setInterval(() => {
    if (listeners.size === 0) return;
    const t = Date.now();
    if (handler.runs.revision === lastRevision && t - lastPush < 5000) return;
    lastRevision = handler.runs.revision;
    lastPush = t;
    for (const res of listeners) push(res);
  }, options.pushMs ?? 1000);
  timer.unref();

  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.setHeader("allow", "GET, HEAD");
      return send(res, 405, "text/plain; charset=utf-8", "read-only\n");
    }
    const path = url.pathname;
    // The scripts and styles hold no data: a page opened with its token loads them without.
    if (path.startsWith("/assets/")) {
      const name = path.slice("/assets/".length);
      const body = assets.get(name);
      if (!body) return send(res, 404, "text/plain; charset=utf-8", "not found\n");
      return send(res, 200, ASSET_TYPES[name.slice(name.lastIndexOf("."))], body);
    }
    if (!authorized(req, url)) {
      res.setHeader("www-authenticate", 'Bearer realm="lrbridge"');
      return send(res, 401, "text/plain; charset=utf-8", "a token is required: ?token=… or Authorization: Bearer …\n");
    }
    if (path === "/api/events") return events(res);
    if (path.startsWith("/api/")) {
      api(path, url, res).catch((err) => json(res, err instanceof Error && err.name === "RegistryError" ? 400 : 500, { error: err instanceof Error ? err.message : String(err) }));
      return;
    }
    const page = PAGES[path.startsWith("/run/") ? "/run" : path];
    if (!page) return send(res, 404, "text/plain; charset=utf-8", "not found\n");
    return send(res, 200, "text/html; charset=utf-8", shell(page.title, page.page));
  });
  server.keepAliveTimeout = 5000;

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : options.port;
  const host = options.host.includes(":") && !options.host.startsWith("[") ? `[${options.host}]` : options.host;
  return {
    url: `http://${host}:${port}`,
    port,
    async close() {
      clearInterval(timer);
      for (const res of listeners) res.end();
      listeners.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
