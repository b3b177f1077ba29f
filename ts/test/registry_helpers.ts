/** Real `lrbridge serve` processes and round trips to them, for the server and registry tests. */
import { ChildProcess, spawn } from "node:child_process";
import { resolve } from "node:path";
import { Request } from "zeromq";
import { decodeBody, encodeBody } from "../src/protocol";

export const ROOT = resolve(__dirname, "..", "..");

export interface Served {
  process: ChildProcess;
  endpoint: string;
  admin: string | null;
  stderr: () => string;
  exited: Promise<number | null>;
  stop(): Promise<void>;
}

/** `lrbridge serve` from source on `bind` (tcp port 0 unless given), waiting for its ready line. */
export async function serve(args: string[], bind = "tcp://127.0.0.1:0"): Promise<Served> {
  const child = spawn(process.execPath, ["-r", "ts-node/register/transpile-only", resolve(ROOT, "ts/src/cli.ts"), "serve", "--bind", bind, ...args], {
    cwd: ROOT,
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stderr!.on("data", (chunk) => (stderr += chunk));
  const exited = new Promise<number | null>((done) => child.on("exit", (code) => done(code)));
  const endpoint = await new Promise<string>((ready, fail) => {
    child.stdout!.on("data", (chunk) => {
      stdout += chunk;
      const match = /^lrbridge serving on (\S+)$/m.exec(stdout);
      if (match) ready(match[1]);
    });
    exited.then((code) => fail(new Error(`server exited with ${code} before ready: ${stderr}`)));
  });
  const admin = /lrbridge admin on (\S+)/.exec(stderr)?.[1] ?? null;
  return {
    process: child,
    endpoint,
    admin,
    stderr: () => stderr,
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      await exited;
    },
  };
}

let nextId = 1;

/** One REQ round trip on a fresh socket. */
export async function ask(endpoint: string, message: Record<string, unknown>): Promise<Record<string, any>> {
  const socket = new Request({ linger: 0, receiveTimeout: 20_000, sendTimeout: 10_000 });
  socket.connect(endpoint);
  try {
    await socket.send(encodeBody({ v: 2, id: nextId++, ...message }));
    const [body] = await socket.receive();
    return decodeBody(body) as Record<string, any>;
  } finally {
    socket.close();
  }
}
