/** Endpoint security: CURVE with per-endpoint allow-lists (ZAP domains), the loopback rule, label escaping. */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Dealer } from "zeromq";
import { readSecretCertificate, writeKeyPair, z85Encode } from "../src/server/certs";
import { escapeLabel, printable, redactLabel } from "../src/server/labels";
import { isLoopbackEndpoint, Security, SecurityError } from "../src/server/security";

let dir: string;
const key = (name: string) => readSecretCertificate(join(dir, name));

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "lrbridge-sec-"));
  writeKeyPair(join(dir, "server"), "server");
  writeKeyPair(join(dir, "serving"), "alice");
  writeKeyPair(join(dir, "admin"), "root");
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** What a CURVE client with `client`'s keys gets from `endpoint`: the handshake, or how it failed. */
async function handshake(endpoint: string, client: { publicKey: string; secretKey: string } | null): Promise<string> {
  const server = key("server/server.key_secret");
  const socket = new Dealer({ linger: 0 });
  if (client) {
    socket.curveServerKey = server.publicKey;
    socket.curvePublicKey = client.publicKey;
    socket.curveSecretKey = client.secretKey;
  }
  try {
    const events = socket.events[Symbol.asyncIterator]();
    socket.connect(endpoint);
    for (;;) {
      const { value } = await events.next();
      if (value.type === "handshake" || value.type.startsWith("handshake:error")) return value.type;
    }
  } finally {
    socket.close();
  }
}

describe("Security.bindRouter", () => {
  it("admits each endpoint's own keys only: the ZAP domain tells serving from admin", async () => {
    const security = new Security({
      curveSecret: join(dir, "server", "server.key_secret"),
      allow: join(dir, "serving"),
      adminAllow: join(dir, "admin"),
    });
    const serving = await security.bindRouter("tcp://127.0.0.1:0", "serving");
    const admin = await security.bindRouter("tcp://127.0.0.1:0", "admin");
    try {
      expect(serving.authenticated && admin.authenticated).toBe(true);
      const alice = key("serving/alice.key_secret");
      const root = key("admin/root.key_secret");
      expect(await handshake(serving.endpoint, alice)).toBe("handshake");
      expect(await handshake(admin.endpoint, alice)).toBe("handshake:error:auth");
      expect(await handshake(admin.endpoint, root)).toBe("handshake");
      expect(await handshake(serving.endpoint, root)).toBe("handshake:error:auth");
      expect(await handshake(serving.endpoint, null)).toMatch(/^handshake:error/);

      // A key removed from the directory is refused after a reload.
      writeKeyPair(join(dir, "serving"), "bob");
      const bob = key("serving/bob.key_secret");
      expect(await handshake(serving.endpoint, bob)).toBe("handshake:error:auth");
      security.reload();
      expect(await handshake(serving.endpoint, bob)).toBe("handshake");
    } finally {
      serving.socket.close();
      admin.socket.close();
      await security.close();
    }
  });

  it("refuses what would be open to the network, before binding", async () => {
    const plain = new Security();
    await expect(plain.bindRouter("tcp://0.0.0.0:0", "serving")).rejects.toThrow(SecurityError);
    await expect(plain.bindRouter("tcp://*:0", "admin")).rejects.toThrow(/--admin-allow DIR/);
    const loopback = await plain.bindRouter("tcp://127.0.0.1:0", "serving");
    expect(loopback.authenticated).toBe(false);
    loopback.socket.close();
    const ipcPath = join(dir, "s.sock");
    const ipc = await plain.bindRouter(`ipc://${ipcPath}`, "serving");
    expect(ipc.authenticated).toBe(true);
    ipc.socket.close();
    await plain.close();

    const lines: string[] = [];
    const insecure = new Security({ insecure: true, log: (line) => lines.push(line) });
    const open = await insecure.bindRouter("tcp://0.0.0.0:0", "serving");
    expect(open.authenticated).toBe(false);
    expect(lines.join("\n")).toMatch(/WARNING: --insecure: the serving endpoint tcp:\/\/0\.0\.0\.0:0 is unauthenticated/);
    open.socket.close();
    await insecure.close();

    // CURVE needs the role's own list; a list needs CURVE; an empty list admits nobody.
    const curveOnly = new Security({ curveSecret: join(dir, "server", "server.key_secret"), allow: join(dir, "serving") });
    await expect(curveOnly.bindRouter("tcp://127.0.0.1:0", "admin")).rejects.toThrow(/needs --admin-allow DIR/);
    await curveOnly.close();
    expect(() => new Security({ allow: join(dir, "serving") })).toThrow(/need --curve-secret/);
    mkdirSync(join(dir, "empty"));
    expect(() => new Security({ curveSecret: join(dir, "server", "server.key_secret"), allow: join(dir, "empty") })).toThrow(/no \*\.key files/);
    expect(() => new Security({ curveSecret: join(dir, "serving", "alice.key"), allow: join(dir, "serving") })).toThrow(/no secret-key/);
  });

  it("tells loopback binds from the others", () => {
    for (const ep of ["tcp://127.0.0.1:5555", "tcp://127.1.2.3:0", "tcp://localhost:5555", "tcp://[::1]:5555", "tcp://::1:5555"]) {
      expect(isLoopbackEndpoint(ep), ep).toBe(true);
    }
    for (const ep of ["tcp://0.0.0.0:5555", "tcp://*:5555", "tcp://eth0:5555", "tcp://10.0.0.1:5555", "tcp://[::]:5555", "tcp://127.0.0.1.evil.com:1", "ipc:///tmp/x"]) {
      expect(isLoopbackEndpoint(ep), ep).toBe(false);
    }
  });
});

describe("keys and labels", () => {
  it("encodes Z85 as RFC 32's test vector", () => {
    expect(z85Encode(Uint8Array.from([0x86, 0x4f, 0xd2, 0x6f, 0xb5, 0x59, 0xf7, 0x5b]))).toBe("HelloWorld");
  });

  it("escapes terminal controls, bidi overrides and backslashes in labels", () => {
    expect(escapeLabel("box:1 \x1b[2J\x07\u009b\u202etxt\\x\ud800")).toBe("box:1 \\x1b[2J\\x07\\x9b\\u202etxt\\\\x\\ud800");
    expect(escapeLabel("gpu-7:4242 train.py ünïcode 🚀")).toBe("gpu-7:4242 train.py ünïcode 🚀");
    expect(printable("a\x1b]0;t\x07")).toBe("a\\x1b]0;t\\x07");
  });

  it("redacts a label to a token that is stable and says nothing", () => {
    const token = redactLabel("box:42 train.py");
    expect(token).toMatch(/^redacted:[0-9a-f]{8}$/);
    expect(redactLabel("box:42 train.py")).toBe(token);
    expect(redactLabel("box:43 train.py")).not.toBe(token);
  });
});
