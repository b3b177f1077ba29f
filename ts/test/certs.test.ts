/** CURVE certificates: `lrbridge keys` files read by pyzmq, pyzmq's files read by the server. */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CertificateError, isZ85Key, parseCertificate, readCertificate, readPublicKeys, readSecretCertificate } from "../src/server/certs";

const ROOT = join(__dirname, "..", "..");
const PY = join(ROOT, ".venv", "bin", "python");

function keysCli(args: string[]) {
  return spawnSync(process.execPath, ["-r", "ts-node/register/transpile-only", join(ROOT, "ts", "src", "cli.ts"), "keys", ...args], {
    cwd: ROOT,
    encoding: "utf8",
  });
}

function python(code: string, ...args: string[]): string {
  const res = spawnSync(PY, ["-c", code, ...args], { encoding: "utf8" });
  if (res.status !== 0) throw new Error(res.stderr);
  return res.stdout;
}

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "lrbridge-keys-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("lrbridge keys", () => {
  it("writes a pair pyzmq loads: the same public key in both files, a secret that matches it, mode 0600", () => {
    const res = keysCli([dir, "alice"]);
    expect(res.status).toBe(0);
    const secretFile = join(dir, "alice.key_secret");
    const publicFile = join(dir, "alice.key");
    expect(statSync(secretFile).mode & 0o777).toBe(0o600);
    const out = JSON.parse(
      python(
        "import json, sys, zmq, zmq.auth\n" +
          "pub, none = zmq.auth.load_certificate(sys.argv[1])\n" +
          "pub2, sec = zmq.auth.load_certificate(sys.argv[2])\n" +
          "print(json.dumps({'pub': pub.decode(), 'none': none, 'pub2': pub2.decode(), 'derived': zmq.curve_public(sec).decode(),\n" +
          "  'dir': sorted(k.decode() for k in zmq.auth.load_certificates(sys.argv[3]))}))",
        publicFile,
        secretFile,
        dir,
      ),
    );
    expect(out.none).toBeNull();
    expect(out.pub).toBe(out.pub2);
    expect(out.derived).toBe(out.pub); // the secret really is the public key's pair
    expect(out.dir).toEqual([out.pub]); // pyzmq's allow-list reader skips the .key_secret
    expect(res.stdout).toContain(out.pub);
    expect(readSecretCertificate(secretFile)).toEqual({ publicKey: out.pub, secretKey: expect.any(String) });
  });

  it("never overwrites a key, and rejects a bad name", () => {
    expect(keysCli([dir, "bob"]).status).toBe(0);
    const before = readFileSync(join(dir, "bob.key_secret"), "utf8");
    const again = keysCli([dir, "bob"]);
    expect(again.status).toBe(1);
    expect(again.stderr).toMatch(/exists: not overwriting/);
    expect(readFileSync(join(dir, "bob.key_secret"), "utf8")).toBe(before);
    expect(keysCli([dir, "../evil"]).status).toBe(1);
    expect(keysCli([]).status).toBe(2);
  });
});

describe("certificate reader", () => {
  it("reads the files zmq.auth.create_certificates writes", () => {
    const out = JSON.parse(
      python(
        "import json, sys, zmq.auth\n" +
          "pub_file, sec_file = zmq.auth.create_certificates(sys.argv[1], 'carol', metadata={'owner': 'carol'})\n" +
          "pub, sec = zmq.auth.load_certificate(sec_file)\n" +
          "print(json.dumps({'pub': pub.decode(), 'sec': sec.decode()}))",
        dir,
      ),
    );
    expect(readCertificate(join(dir, "carol.key"))).toEqual({ publicKey: out.pub, secretKey: null });
    expect(readSecretCertificate(join(dir, "carol.key_secret"))).toEqual({ publicKey: out.pub, secretKey: out.sec });
    expect([...readPublicKeys(dir).entries()]).toEqual([[out.pub, "carol.key"]]);
  });

  it("names the file and the problem when a certificate is wrong", () => {
    const bad = join(dir, "bad.key");
    writeFileSync(bad, 'curve\n    public-key = "short"\n');
    expect(() => readCertificate(bad)).toThrow(CertificateError);
    expect(() => readCertificate(bad)).toThrow(/bad\.key: public-key is not a 40-character Z85 key/);
    expect(() => parseCertificate("metadata\ncurve\n", "x")).toThrow(/x: no public-key/);
    writeFileSync(join(dir, "pub.key"), 'curve\n    public-key = "' + "a".repeat(40) + '"\n');
    expect(() => readSecretCertificate(join(dir, "pub.key"))).toThrow(/no secret-key/);
    expect(isZ85Key("a".repeat(40))).toBe(true);
    expect(isZ85Key("a".repeat(39) + '"')).toBe(false);
  });
});
