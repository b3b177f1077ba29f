/**
 * The server's reply queues for peers that do not read: bounded per peer and
 * all peers together, whatever the number of peers. The socket here stands
 * in for a ROUTER whose peers' libzmq queues are full (send answers EAGAIN),
 * except for peers that read.
 */
import { describe, expect, it } from "vitest";
import { Outbox } from "../src/server/server";

function routerWithPeers(reading: Set<string>) {
  const sent: string[] = [];
  const socket = {
    async send(frames: Buffer[]): Promise<void> {
      const peer = frames[0].toString();
      if (!reading.has(peer)) throw Object.assign(new Error("Socket temporarily unavailable"), { code: "EAGAIN" });
      sent.push(peer);
    },
  };
  return { socket, sent };
}

const reply = (peer: string, bytes: number) => [Buffer.from(peer), Buffer.alloc(bytes)];

describe("Outbox", () => {
  it("keeps at most its budget for all peers together, however many peers never read", async () => {
    const reading = new Set(["honest"]);
    const { socket, sent } = routerWithPeers(reading);
    const lines: string[] = [];
    let closing = false;
    const outbox = new Outbox(socket, (l) => lines.push(l), () => closing, 64 * 1024, 256 * 1024);
    let most = 0;
    // As the server's loop does: a reply pushed, then a round of sends.
    for (let i = 0; i < 600; i++) {
      outbox.push(reply(`silent-${i % 150}`, 4096));
      if (i % 30 === 0) outbox.push(reply("honest", 4096));
      most = Math.max(most, outbox.bytes);
      await outbox.flush();
    }
    await outbox.flush();
    expect(most).toBeLessThanOrEqual(256 * 1024 + 8192);
    expect(outbox.bytes).toBeLessThanOrEqual(256 * 1024);
    expect(sent.filter((p) => p === "honest")).toHaveLength(20); // the reading peer lost nothing
    expect(lines.some((l) => l.includes("is not reading"))).toBe(true);
    closing = true;
  });

  it("keeps at most its per-peer budget for one peer that never reads", async () => {
    const { socket } = routerWithPeers(new Set());
    let closing = false;
    const outbox = new Outbox(socket, () => {}, () => closing, 64 * 1024, 1024 * 1024);
    for (let i = 0; i < 1000; i++) outbox.push(reply("silent", 4096));
    await outbox.flush();
    expect(outbox.bytes).toBeLessThanOrEqual(64 * 1024 + 4096);
    expect(outbox.peers).toBe(1);
    closing = true;
  });

  it("forgets a peer once its replies are out", async () => {
    const reading = new Set<string>();
    const { socket, sent } = routerWithPeers(reading);
    let closing = false;
    const outbox = new Outbox(socket, () => {}, () => closing);
    for (let i = 0; i < 300; i++) outbox.push(reply(`peer-${i}`, 1024));
    await outbox.flush();
    expect(outbox.peers).toBe(300);
    for (let i = 0; i < 300; i++) reading.add(`peer-${i}`);
    await outbox.flush();
    expect(sent).toHaveLength(300);
    expect(outbox.peers).toBe(0);
    expect(outbox.bytes).toBe(0);
    closing = true;
  });
});
