/**
 * CURVE key pairs in pyzmq's certificate files (zmq.auth.create_certificates,
 * czmq's ZPL text): `NAME.key` holds the public key, `NAME.key_secret` the
 * pair. Both sides read the same files: pyzmq with zmq.auth.load_certificate,
 * the server with readCertificate below.
 */
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { curveKeyPair } from "zeromq";

const Z85_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
const Z85_KEY = new RegExp(`^[${Z85_ALPHABET.replace(/[\]\\^-]/g, "\\$&")}]{40}$`);

export interface Certificate {
  /** Z85, 40 characters. */
  publicKey: string;
  /** Z85, 40 characters; null in a public certificate. */
  secretKey: string | null;
}

export class CertificateError extends Error {}

/** A 32-byte key in Z85 (what CURVE options and certificate files hold). */
export function isZ85Key(text: string): boolean {
  return Z85_KEY.test(text);
}

/** Z85 (ZeroMQ RFC 32) of bytes whose length is a multiple of 4: how a raw ZAP credential becomes a key. */
export function z85Encode(bytes: Uint8Array): string {
  if (bytes.length % 4 !== 0) throw new RangeError(`Z85 needs a multiple of 4 bytes, got ${bytes.length}`);
  let out = "";
  for (let i = 0; i < bytes.length; i += 4) {
    let value = ((bytes[i] << 24) | (bytes[i + 1] << 16) | (bytes[i + 2] << 8) | bytes[i + 3]) >>> 0;
    let chunk = "";
    for (let k = 0; k < 5; k++) {
      chunk = Z85_ALPHABET[value % 85] + chunk;
      value = Math.floor(value / 85);
    }
    out += chunk;
  }
  return out;
}

/** Parses a certificate's text the way pyzmq's load_certificate does (`public-key = "…"`, `secret-key = "…"`). */
export function parseCertificate(text: string, source = "certificate"): Certificate {
  let publicKey: string | null = null;
  let secretKey: string | null = null;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line.startsWith("#")) continue;
    const match = /^(public-key|secret-key)\s*=(.*)$/.exec(line);
    if (!match) continue;
    const value = match[2].trim().replace(/^["']|["']$/g, "");
    if (!isZ85Key(value)) throw new CertificateError(`${source}: ${match[1]} is not a 40-character Z85 key`);
    if (match[1] === "public-key") publicKey ??= value;
    else secretKey ??= value;
  }
  if (publicKey === null) throw new CertificateError(`${source}: no public-key found`);
  return { publicKey, secretKey };
}

export function readCertificate(path: string): Certificate {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new CertificateError(`cannot read ${path}: ${(err as Error).message}`);
  }
  return parseCertificate(text, path);
}

/** A secret certificate (`.key_secret`): both keys, or a CertificateError. */
export function readSecretCertificate(path: string): { publicKey: string; secretKey: string } {
  const cert = readCertificate(path);
  if (cert.secretKey === null) throw new CertificateError(`${path} holds no secret-key: pass the .key_secret file`);
  return { publicKey: cert.publicKey, secretKey: cert.secretKey };
}

/** The public keys of every `*.key` file in `dir` (pyzmq's load_certificates), by file name. */
export function readPublicKeys(dir: string): Map<string, string> {
  let names: string[];
  try {
    names = readdirSync(dir).filter((name) => name.endsWith(".key")).sort();
  } catch (err) {
    throw new CertificateError(`cannot read the key directory ${dir}: ${(err as Error).message}`);
  }
  const keys = new Map<string, string>();
  for (const name of names) keys.set(readCertificate(join(dir, name)).publicKey, name);
  return keys;
}

/**
 * CURVE client options from LRBRIDGE_SERVER_KEY (a .key file or Z85 text)
 * and LRBRIDGE_CLIENT_KEY (a .key_secret file), as the Python client reads
 * them; none when LRBRIDGE_SERVER_KEY is unset.
 */
export function clientCurveOptions(env: NodeJS.ProcessEnv): { curveServerKey?: string; curvePublicKey?: string; curveSecretKey?: string } {
  const server = env.LRBRIDGE_SERVER_KEY?.trim();
  if (!server) return {};
  const serverKey = isZ85Key(server) ? server : readCertificate(server).publicKey;
  const client = env.LRBRIDGE_CLIENT_KEY ? readSecretCertificate(env.LRBRIDGE_CLIENT_KEY) : curveKeyPair();
  return { curveServerKey: serverKey, curvePublicKey: client.publicKey, curveSecretKey: client.secretKey };
}

const PUBLIC_BANNER = [
  "#   ZeroMQ CURVE Public Certificate",
  "#   Exchange securely, or use a secure mechanism to verify the contents",
  "#   of this file after exchange. Store public certificates in your home",
  "#   directory, in the .curve subdirectory.",
];
const SECRET_BANNER = [
  "#   ZeroMQ CURVE **Secret** Certificate",
  "#   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.",
];

/** The text pyzmq writes for a certificate (banner, empty metadata, curve keys). */
export function formatCertificate(cert: Certificate, now = new Date()): string {
  const banner = cert.secretKey === null ? PUBLIC_BANNER : SECRET_BANNER;
  const lines = [`#   ****  Generated on ${now.toISOString()} by lrbridge  ****`, ...banner, "", "metadata", "curve"];
  lines.push(`    public-key = "${cert.publicKey}"`);
  if (cert.secretKey !== null) lines.push(`    secret-key = "${cert.secretKey}"`);
  return `${lines.join("\n")}\n`;
}

export interface WrittenPair {
  publicFile: string;
  secretFile: string;
  publicKey: string;
}

/**
 * Generates a key pair into `dir/NAME.key` and `dir/NAME.key_secret` (mode
 * 0600 from creation on: it is never readable by others, even briefly). Never overwrites: a lost secret key locks its
 * owner out, and a replaced one silently changes who is allowed.
 */
export function writeKeyPair(dir: string, name: string): WrittenPair {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/.test(name)) {
    throw new CertificateError(`key name ${JSON.stringify(name)} must match [A-Za-z0-9][A-Za-z0-9._-]*`);
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const publicFile = join(dir, `${name}.key`);
  const secretFile = join(dir, `${name}.key_secret`);
  for (const file of [publicFile, secretFile]) {
    if (existsSync(file)) throw new CertificateError(`${file} exists: not overwriting a key`);
  }
  const { publicKey, secretKey } = curveKeyPair();
  const now = new Date();
  writeNew(secretFile, formatCertificate({ publicKey, secretKey }, now), 0o600);
  writeNew(publicFile, formatCertificate({ publicKey, secretKey: null }, now), 0o644);
  return { publicFile, secretFile, publicKey };
}

function writeNew(path: string, text: string, mode: number): void {
  const fd = openSync(path, "wx", mode);
  try {
    writeSync(fd, text);
  } finally {
    closeSync(fd);
  }
}
