/**
 * A real Postgres for the tests that need one: tools/postgres.py starts a
 * throwaway cluster (Debian's postgresql) and stops it. No skipping: when it
 * cannot start, the caller's beforeAll fails.
 */
import { execFileSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "pg";

const TOOL = join(__dirname, "..", "..", "tools", "postgres.py");

export interface TestPostgres {
  url: string;
  /** A fresh, empty database on the cluster: its URL. */
  database(): Promise<string>;
  stop(): void;
}

export function startPostgres(): TestPostgres {
  const dir = mkdtempSync(join(tmpdir(), "lrbridge-pg-"));
  chmodSync(dir, 0o755);
  const cluster = join(dir, "cluster");
  const url = execFileSync("python3", [TOOL, "start", cluster], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }).trim();
  let n = 0;
  return {
    url,
    async database() {
      const name = `t${process.pid}_${++n}`;
      const admin = new Client({ connectionString: url });
      await admin.connect();
      try {
        await admin.query(`CREATE DATABASE ${name}`);
      } finally {
        await admin.end();
      }
      return url.replace(/\/postgres$/, `/${name}`);
    },
    stop() {
      execFileSync("python3", [TOOL, "stop", cluster], { stdio: "inherit" });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
