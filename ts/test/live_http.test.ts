/** The web view's HTTP side: auth, read-only, the run API and its planned curve, the registry overlay. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bind } from "../src/bind";
import { isLoopback, type RunningHttp, startHttp } from "../src/live/http";
import type { RegistryView } from "../src/live/registry";
import { Handler } from "../src/server/handler";
import type { OpenedReply } from "../src/protocol";

const ONECYCLE = { type: "OneCycleLR", max_lr: 0.2, total_steps: 500 };

/** A store with two versions of one name, in memory: what the web view reads from a registry. */
const registry: RegistryView = {
  async names() {
    return ["team/warmup"];
  },
  async history(name) {
    return { name, versions: [], aliases: { prod: 2 }, events: [{ alias: "prod", from: 1, to: 2, who: "ana", why: "<b>longer</b>", at: 1 }] };
  },
  async resolve(ref) {
    const version = Number(ref.split("@")[1]);
    const canonical = bind({ type: "StepLR", step_size: version === 1 ? 30 : 40, gamma: 0.5 }, [{ lr: 1 }]).canonical;
    return { name: "team/warmup", version, spec_hash: String(version), message: null, author: null, created_at: 0, canonical };
  },
};

describe("the web view over HTTP", () => {
  let handler: Handler;
  let web: RunningHttp;
  let open: OpenedReply;

  beforeAll(async () => {
    handler = new Handler({ bind });
    open = handler.handle({ v: 2, id: 1, type: "open", spec: ONECYCLE, groups: [{ lr: 0.1, momentum: 0.9 }] }) as OpenedReply;
    handler.handle({
      v: 2, id: 2, type: "heartbeat", run: { id: "r/1", name: "<img src=x onerror=alert(1)>" },
      hash: open.hash, spec_hash: open.spec_hash, step: 120, lr: [0.15], momentum: [0.86], total: 500, state: "running",
    });
    web = await startHttp({ host: "127.0.0.1", port: 0, handler, registry, token: "tok" });
  });
  afterAll(async () => web.close());

  const get = (path: string, init?: RequestInit) => fetch(web.url + path, init);

  it("refuses requests without the token, and anything but GET", async () => {
    expect((await get("/api/runs")).status).toBe(401);
    expect((await get("/api/runs?token=nope")).status).toBe(401);
    expect((await get("/api/runs", { headers: { authorization: "Bearer tok" } })).status).toBe(200);
    expect((await get("/api/runs?token=tok", { method: "POST" })).status).toBe(405);
    expect((await get("/assets/app.js")).status).toBe(200); // code, no data
  });

  it("serves a run with its planned curve: the schedule's own rows", async () => {
    const body = await (await get(`/api/run/${encodeURIComponent("r/1")}?token=tok`)).json();
    expect(body.run).toMatchObject({ name: "<img src=x onerror=alert(1)>", step: 120, total: 500, type: "OneCycleLR", state: "running" });
    const rows = bind(ONECYCLE, [{ lr: 0.1, momentum: 0.9 }]).rows(0, 501);
    expect(body.planned.steps).toHaveLength(501);
    expect(body.planned.lr[0]).toEqual(Array.from(rows.lr));
    expect(body.planned.momentum[0]).toEqual(Array.from(rows.momentum!));
  });

  it("pages are shells: a run's name never appears in the HTML", async () => {
    const html = await (await get("/run/r%2F1?token=tok")).text();
    expect(html).not.toContain("onerror");
    expect((await get("/?token=tok")).headers.get("content-security-policy")).toContain("script-src 'self'");
  });

  it("overlays two registry versions and finds where they part", async () => {
    const body = await (await get("/api/registry/overlay?a=team/warmup@1&b=team/warmup@2&steps=100&token=tok")).json();
    expect(body.first_step).toBe(30);
    expect(body.lr_a).toHaveLength(100);
  });

  it("knows loopback hosts", () => {
    for (const host of ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"]) expect(isLoopback(host)).toBe(true);
    for (const host of ["0.0.0.0", "10.0.0.5", "::", "example.com"]) expect(isLoopback(host)).toBe(false);
  });

  it("will not start on a non-loopback host without a token", async () => {
    await expect(startHttp({ host: "0.0.0.0", port: 0, handler })).rejects.toThrow(/--http-token/);
  });
});
