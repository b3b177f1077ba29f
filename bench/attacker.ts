/**
 * An attacker for the soak and the long fuzz: sends the attack catalogue and
 * fuzzed frames to a server for a while, a few in flight, and reports what
 * came back.
 *
 *   node -r ts-node/register/transpile-only bench/attacker.ts ENDPOINT SECONDS [SEED] [MAX_FRAMES]
 *
 * Prints one JSON line: {frames, replies, internal, codes: {code: n}, seconds}.
 */
import { Dealer } from "zeromq";
import { decodeBody, encodeBody } from "../ts/src/protocol";
import { ATTACKS } from "../ts/test/attack_catalogue";
import { FUZZ_GROUPS, FUZZ_SPECS, fuzzFrames } from "../ts/test/fuzz";

type Msg = Record<string, unknown>;

/** The bodies waiting for replies, printed if one never comes. */
let inFlight: Buffer[] = [];

async function main(): Promise<void> {
  const [endpoint, secondsText, seedText, maxText] = process.argv.slice(2);
  const seconds = Number(secondsText);
  const maxFrames = Number(maxText ?? Infinity);
  const socket = new Dealer({ linger: 0, receiveTimeout: 30_000 });
  socket.connect(endpoint);
  const ask = async (body: Buffer): Promise<Msg> => {
    inFlight = [body];
    await socket.send(body);
    return decodeBody((await socket.receive())[0]) as Msg;
  };
  const codes: Record<string, number> = {};
  let internal = 0;
  let frames = 0;
  let replies = 0;
  const note = (reply: Msg) => {
    replies++;
    const key = reply.type === "error" ? String(reply.code) : String(reply.type);
    codes[key] = (codes[key] ?? 0) + 1;
    if (reply.code === "INTERNAL") internal++;
  };
  const hashes: string[] = [];
  for (const spec of FUZZ_SPECS) hashes.push((await ask(encodeBody({ v: 2, id: 0, type: "open", spec, groups: FUZZ_GROUPS }))).hash as string);
  const t0 = Date.now();
  const fuzz = fuzzFrames(Number.MAX_SAFE_INTEGER, Number(seedText ?? 1), hashes);
  let round = 0;
  while ((Date.now() - t0) / 1000 < seconds && frames < maxFrames) {
    // Every 50 fuzzed frames, one attack from the catalogue.
    if (round++ % 50 === 0 && maxFrames === Infinity) {
      const a = ATTACKS[Math.floor(round / 50) % ATTACKS.length];
      const setup: Msg[] = [];
      for (const m of a.setup ?? []) setup.push(await ask(encodeBody(m)));
      for (let i = 0; i < (a.repeat ?? 1); i++) {
        frames++;
        note(await ask(a.body(setup)));
      }
      continue;
    }
    // Eight in flight, as a pipelining client would.
    const batch = Math.min(8, maxFrames - frames);
    inFlight = Array.from({ length: batch }, () => fuzz.next().value as Buffer);
    for (const body of inFlight) await socket.send(body);
    frames += batch;
    for (let i = 0; i < batch; i++) note(decodeBody((await socket.receive())[0]) as Msg);
  }
  socket.close();
  process.stdout.write(`${JSON.stringify({ frames, replies, internal, codes, seconds: (Date.now() - t0) / 1000 })}\n`);
}

main().catch((err) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.stderr.write(`in flight (base64): ${inFlight.map((b) => b.toString("base64")).join(" ")}\n`);
  process.exit(1);
});
