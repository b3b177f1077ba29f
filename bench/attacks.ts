/**
 * Time and memory per attack request (ts/test/attack_catalogue.ts), one
 * child process per attack so a stall or a crash is measured, not suffered.
 *
 *   node -r ts-node/register/transpile-only bench/attacks.ts [--timeout S] [--src DIR]
 *
 * --src: the ts/src tree to measure (default this checkout's); point it at an
 * older checkout's ts/src for "before" figures. Writes one JSON line per
 * attack: {name, outcome, ms_max, ms_total, rss_mib, reply}.
 */
import { spawnSync } from "node:child_process";
import { join, resolve } from "node:path";

type Msg = Record<string, unknown>;

const args = process.argv.slice(2);
const opt = (name: string, dflt: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};

if (args[0] === "--one") {
  runOne(args[1], args[2]);
} else {
  const timeoutS = Number(opt("--timeout", "30"));
  const src = resolve(opt("--src", join(__dirname, "..", "ts", "src")));
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { ATTACKS } = require("../ts/test/attack_catalogue") as typeof import("../ts/test/attack_catalogue");
  for (const a of ATTACKS) {
    const t = Date.now();
    const child = spawnSync(process.execPath, ["--max-old-space-size=4096", "-r", "ts-node/register/transpile-only", __filename, "--one", a.name, src], {
      timeout: timeoutS * 1000,
      encoding: "utf8",
      maxBuffer: 64 * 1024 * 1024,
    });
    const last = child.stdout.trim().split("\n").pop() ?? "";
    let line: Msg;
    try {
      line = JSON.parse(last) as Msg;
    } catch {
      const outcome = child.error ? `no answer within ${timeoutS} s (killed)` : `crashed: ${(child.stderr.match(/(FATAL ERROR|RangeError|Error)[^\n]*/) ?? ["exit " + child.status])[0]}`;
      line = { name: a.name, outcome, wall_s: (Date.now() - t) / 1000 };
    }
    process.stdout.write(`${JSON.stringify(line)}\n`);
  }
}

function runOne(name: string, src: string): void {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { ATTACKS } = require("../ts/test/attack_catalogue") as typeof import("../ts/test/attack_catalogue");
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { Handler } = require(join(src, "server", "handler"));
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { bind } = require(src);
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { encodeBody, decodeBody } = require(join(src, "protocol"));
  const a = ATTACKS.find((x) => x.name === name)!;
  const handler = new Handler({ bind });
  const setupReplies = (a.setup ?? []).map((m) => decodeBody(handler.handleBytes(encodeBody(m)).bytes) as Msg);
  // Once untimed: a server that has run a while has its code compiled (a stall shows here too).
  handler.handleBytes(a.body(setupReplies));
  const times: number[] = [];
  let reply: Msg = {};
  const repeat = a.repeat ?? 1;
  for (let i = 0; i < repeat; i++) {
    const body = a.body(setupReplies);
    const t = performance.now();
    reply = decodeBody(handler.handleBytes(body).bytes) as Msg;
    times.push(performance.now() - t);
  }
  const rss = process.memoryUsage().rss / 2 ** 20;
  process.stdout.write(
    `${JSON.stringify({
      name,
      outcome: reply.type === "error" ? `${reply.code}` : `${reply.type}`,
      ms_max: Number(Math.max(...times).toFixed(1)),
      ms_total: Number(times.reduce((x, y) => x + y, 0).toFixed(1)),
      requests: repeat,
      rss_mib: Math.round(rss),
      reply: String(reply.message ?? "").slice(0, 90),
    })}\n`,
  );
}
