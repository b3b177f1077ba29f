/**
 * The embedded store: one SQLite file through node:sqlite (built into the
 * pinned Node, so no native addon to build). WAL so readers never wait for
 * a writer; every write is one BEGIN IMMEDIATE … COMMIT.
 */
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import type { DatabaseSync, StatementSync } from "node:sqlite";
import {
  AliasEvent,
  AliasMove,
  HandleRecord,
  History,
  LiveRunDoc,
  MAX_RUNS,
  MAX_LISTED_USES,
  MAX_RUN_EVENTS,
  MAX_RUN_USES,
  Publish,
  RunEvent,
  RunIdentity,
  RunQuery,
  RunRecord,
  RunRow,
  Store,
  Use,
  Version,
  aliasConflict,
  schemaSql,
  toRunRecord,
  unavailable,
  unknownVersion,
} from "./store";

const SCHEMA = schemaSql({ float: "REAL", int64: "INTEGER", autoId: "INTEGER PRIMARY KEY AUTOINCREMENT" });

type Row = Record<string, unknown>;

const BUSY_TIMEOUT_MS = 5000;

/** Switching to WAL can answer "locked" without waiting on the busy handler: try again for a while. */
async function retryWhileLocked(fn: () => void): Promise<void> {
  const deadline = Date.now() + BUSY_TIMEOUT_MS;
  for (;;) {
    try {
      return fn();
    } catch (err) {
      if (!/locked|busy/i.test(String((err as Error)?.message)) || Date.now() > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

export class SqliteStore implements Store {
  readonly kind = "sqlite";
  readonly notifies = false;
  private readonly stmts = new Map<string, StatementSync>();

  private constructor(private readonly db: DatabaseSync) {}

  static async open(path: string): Promise<SqliteStore> {
    try {
      const { DatabaseSync } = await import("node:sqlite");
      if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
      // Several servers (or a server and the CLI) may open one file at once: each
      // waits for the others' locks, the first switch to WAL and the schema included.
      const db = new DatabaseSync(path, { timeout: BUSY_TIMEOUT_MS });
      db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS};`);
      await retryWhileLocked(() => db.exec("PRAGMA journal_mode = WAL;"));
      db.exec("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;");
      await retryWhileLocked(() => db.exec(SCHEMA));
      return new SqliteStore(db);
    } catch (err) {
      throw unavailable("sqlite", err);
    }
  }

  private q(sql: string): StatementSync {
    let s = this.stmts.get(sql);
    if (!s) this.stmts.set(sql, (s = this.db.prepare(sql)));
    return s;
  }

  /** One write transaction; a throw rolls it back. */
  private tx<T>(fn: () => T): T {
    this.db.exec("BEGIN IMMEDIATE");
    try {
      const out = fn();
      this.db.exec("COMMIT");
      return out;
    } catch (err) {
      try {
        this.db.exec("ROLLBACK");
      } catch {
        // the transaction is already gone (the connection failed)
      }
      throw err;
    }
  }

  private async run<T>(fn: () => T): Promise<T> {
    try {
      return fn();
    } catch (err) {
      throw unavailable(this.kind, err);
    }
  }

  publish(p: Publish): Promise<{ version: Version; created: boolean }> {
    return this.run(() =>
      this.tx(() => {
        const existing = this.q("SELECT * FROM versions WHERE name = ? AND spec_hash = ?").get(p.name, p.spec_hash);
        if (existing) return { version: toVersion(existing), created: false };
        const next = Number((this.q("SELECT COALESCE(MAX(version), 0) + 1 AS n FROM versions WHERE name = ?").get(p.name) as Row).n);
        this.q("INSERT INTO versions (name, version, spec_hash, canonical, message, author, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)").run(
          p.name,
          next,
          p.spec_hash,
          JSON.stringify(p.canonical),
          p.message,
          p.author,
          p.at,
        );
        const version: Version = { name: p.name, version: next, spec_hash: p.spec_hash, canonical: p.canonical, message: p.message, author: p.author, created_at: p.at };
        return { version, created: true };
      }),
    );
  }

  version(name: string, version: number): Promise<Version | null> {
    return this.run(() => maybe(this.q("SELECT * FROM versions WHERE name = ? AND version = ?").get(name, version), toVersion));
  }

  latest(name: string): Promise<Version | null> {
    return this.run(() => maybe(this.q("SELECT * FROM versions WHERE name = ? ORDER BY version DESC LIMIT 1").get(name), toVersion));
  }

  versionByHash(name: string, specHash: string): Promise<Version | null> {
    return this.run(() => maybe(this.q("SELECT * FROM versions WHERE name = ? AND spec_hash = ?").get(name, specHash), toVersion));
  }

  aliasTarget(name: string, alias: string): Promise<number | null> {
    return this.run(() => {
      const row = this.q("SELECT version FROM aliases WHERE name = ? AND alias = ?").get(name, alias) as Row | undefined;
      return row ? Number(row.version) : null;
    });
  }

  moveAlias(m: AliasMove): Promise<AliasEvent> {
    return this.run(() =>
      this.tx(() => {
        if (!this.q("SELECT 1 AS x FROM versions WHERE name = ? AND version = ?").get(m.name, m.to)) throw unknownVersion(m.name, m.to);
        const row = this.q("SELECT version FROM aliases WHERE name = ? AND alias = ?").get(m.name, m.alias) as Row | undefined;
        const from = row ? Number(row.version) : null;
        if (m.expect !== undefined && m.expect !== from) throw aliasConflict(m, from);
        this.q("INSERT INTO aliases (name, alias, version) VALUES (?, ?, ?) ON CONFLICT (name, alias) DO UPDATE SET version = excluded.version").run(m.name, m.alias, m.to);
        this.q("INSERT INTO alias_events (name, alias, from_version, to_version, who, why, at) VALUES (?, ?, ?, ?, ?, ?, ?)").run(
          m.name,
          m.alias,
          from,
          m.to,
          m.who,
          m.why,
          m.at,
        );
        return { alias: m.alias, from, to: m.to, who: m.who, why: m.why, at: m.at };
      }),
    );
  }

  history(name: string, at?: number): Promise<History> {
    return this.run(() => {
      const until = at ?? Number.MAX_VALUE;
      const versions = this.q("SELECT name, version, spec_hash, message, author, created_at FROM versions WHERE name = ? ORDER BY version")
        .all(name)
        .map((r) => toVersionInfo(r as Row));
      const events = this.q("SELECT * FROM alias_events WHERE name = ? AND at <= ? ORDER BY id").all(name, until).map((r) => toEvent(r as Row));
      return { versions, aliases: aliasesOf(events), events };
    });
  }

  recordUse(run: RunIdentity, use: Use, handle: HandleRecord): Promise<void> {
    return this.run(() =>
      this.tx(() => {
        this.q(
          `INSERT INTO runs (id, name, rank, world_size, host, pid, first_seen, last_seen, last_step) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (id) DO UPDATE SET name = COALESCE(excluded.name, runs.name), rank = COALESCE(excluded.rank, runs.rank),
             world_size = COALESCE(excluded.world_size, runs.world_size), host = COALESCE(excluded.host, runs.host),
             pid = COALESCE(excluded.pid, runs.pid), last_seen = excluded.last_seen, last_step = MAX(runs.last_step, excluded.last_step)`,
        ).run(run.id, run.name ?? null, run.rank ?? null, run.world_size ?? null, run.host ?? null, run.pid ?? null, use.at, use.at, use.step);
        const n = Number((this.q("SELECT COUNT(*) AS n FROM uses WHERE run_id = ?").get(run.id) as Row).n);
        if (n < MAX_RUN_USES) this.q("INSERT INTO uses (run_id, ref, name, version, spec_hash, step, at, hash, groups, last_epoch) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)").run(
          run.id,
          use.ref,
          use.name,
          use.version,
          use.spec_hash,
          use.step,
          use.at,
          use.hash,
          JSON.stringify(use.groups),
          use.last_epoch,
        );
        this.q("INSERT INTO handles (hash, canonical, groups, last_epoch) VALUES (?, ?, ?, ?) ON CONFLICT (hash) DO NOTHING").run(
          handle.hash,
          JSON.stringify(handle.canonical),
          JSON.stringify(handle.groups),
          handle.last_epoch,
        );
      }),
    );
  }

  recordEvent(runId: string, event: RunEvent): Promise<void> {
    return this.run(() =>
      this.tx(() => {
        const n = Number((this.q("SELECT COUNT(*) AS n FROM run_events WHERE run_id = ?").get(runId) as Row).n);
        if (n >= MAX_RUN_EVENTS) return;
        this.q("INSERT INTO run_events (run_id, kind, step, data, at) VALUES (?, ?, ?, ?, ?)").run(runId, event.kind, event.step, JSON.stringify(event.data), event.at);
        this.q("UPDATE runs SET last_seen = MAX(last_seen, ?), last_step = MAX(last_step, ?) WHERE id = ?").run(event.at, event.step, runId);
      }),
    );
  }

  touchRun(runId: string, step: number, at: number): Promise<void> {
    return this.run(() => {
      this.q("UPDATE runs SET last_seen = MAX(last_seen, ?), last_step = MAX(last_step, ?) WHERE id = ?").run(at, step, runId);
    });
  }

  saveHandle(handle: HandleRecord): Promise<void> {
    return this.run(() => {
      this.q("INSERT INTO handles (hash, canonical, groups, last_epoch) VALUES (?, ?, ?, ?) ON CONFLICT (hash) DO NOTHING").run(
        handle.hash,
        JSON.stringify(handle.canonical),
        JSON.stringify(handle.groups),
        handle.last_epoch,
      );
    });
  }

  handle(hash: string): Promise<HandleRecord | null> {
    return this.run(() => {
      const row = this.q("SELECT * FROM handles WHERE hash = ?").get(hash) as Row | undefined;
      if (!row) return null;
      return { hash, canonical: JSON.parse(String(row.canonical)), groups: JSON.parse(String(row.groups)), last_epoch: Number(row.last_epoch) };
    });
  }

  runs(q: RunQuery): Promise<RunRecord[]> {
    return this.run(() => {
      let rows: Row[];
      if (q.run !== undefined) rows = this.q("SELECT * FROM runs WHERE id = ?").all(q.run) as Row[];
      else if (q.name !== undefined && q.version !== undefined) {
        rows = this.q(`SELECT * FROM runs WHERE id IN (SELECT run_id FROM uses WHERE name = ? AND version = ?) ORDER BY last_seen DESC, id LIMIT ${MAX_RUNS}`).all(q.name, q.version) as Row[];
      } else if (q.name !== undefined) {
        rows = this.q(`SELECT * FROM runs WHERE id IN (SELECT run_id FROM uses WHERE name = ?) ORDER BY last_seen DESC, id LIMIT ${MAX_RUNS}`).all(q.name) as Row[];
      } else rows = this.q(`SELECT * FROM runs ORDER BY last_seen DESC, id LIMIT ${MAX_RUNS}`).all() as Row[];
      return rows.map((row) => {
        const id = String(row.id);
        const listed = q.run !== undefined ? MAX_RUN_USES : MAX_LISTED_USES;
        const uses = this.q("SELECT * FROM uses WHERE run_id = ? ORDER BY id LIMIT ?").all(id, listed).map((u) => toUse(u as Row));
        const total = Number((this.q("SELECT COUNT(*) AS n FROM uses WHERE run_id = ?").get(id) as Row).n);
        const events = q.run !== undefined ? this.q("SELECT * FROM run_events WHERE run_id = ? ORDER BY id").all(id).map((e) => toRunEvent(e as Row)) : undefined;
        return toRunRecord(row as unknown as RunRow, uses, total, events);
      });
    });
  }

  names(): Promise<string[]> {
    return this.run(() => this.q("SELECT DISTINCT name FROM versions ORDER BY name").all().map((r) => String((r as Row).name)));
  }

  saveLiveRuns(rows: LiveRunDoc[]): Promise<void> {
    return this.run(() =>
      this.tx(() => {
        const upsert = this.q("INSERT INTO live_runs (id, last_seen, row) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET last_seen = excluded.last_seen, row = excluded.row");
        for (const r of rows) upsert.run(r.id, r.last_seen, r.row);
      }),
    );
  }

  liveRuns(limit: number): Promise<LiveRunDoc[]> {
    return this.run(() =>
      this.q("SELECT id, last_seen, row FROM live_runs ORDER BY last_seen DESC, id LIMIT ?")
        .all(limit)
        .map((r) => ({ id: String((r as Row).id), last_seen: Number((r as Row).last_seen), row: String((r as Row).row) })),
    );
  }

  watch(): void {
    // One file, no notifications: the server reads moving refs from the file every time.
  }

  async close(): Promise<void> {
    try {
      this.db.close();
    } catch {
      // already closed
    }
  }
}

function maybe<T>(row: unknown, fn: (r: Row) => T): T | null {
  return row ? fn(row as Row) : null;
}

export function toVersionInfo(r: Row): Omit<Version, "canonical"> {
  return {
    name: String(r.name),
    version: Number(r.version),
    spec_hash: String(r.spec_hash),
    message: String(r.message),
    author: String(r.author),
    created_at: Number(r.created_at),
  };
}

export function toVersion(r: Row): Version {
  return { ...toVersionInfo(r), canonical: JSON.parse(String(r.canonical)) };
}

export function toEvent(r: Row): AliasEvent {
  return {
    alias: String(r.alias),
    from: r.from_version === null ? null : Number(r.from_version),
    to: Number(r.to_version),
    who: String(r.who),
    why: String(r.why),
    at: Number(r.at),
  };
}

export function aliasesOf(events: AliasEvent[]): Record<string, number> {
  const aliases: Record<string, number> = {};
  for (const e of events) aliases[e.alias] = e.to;
  return aliases;
}

export function toUse(r: Row): Use {
  return {
    ref: String(r.ref),
    name: String(r.name),
    version: Number(r.version),
    spec_hash: String(r.spec_hash),
    step: Number(r.step),
    at: Number(r.at),
    hash: String(r.hash),
    groups: typeof r.groups === "string" ? JSON.parse(r.groups) : (r.groups as unknown[]),
    last_epoch: Number(r.last_epoch),
  };
}

export function toRunEvent(r: Row): RunEvent {
  return { kind: String(r.kind) as RunEvent["kind"], step: Number(r.step), data: typeof r.data === "string" ? JSON.parse(r.data) : r.data, at: Number(r.at) };
}
