/**
 * The shared store: Postgres through `pg`, for several server replicas at
 * once. Publishing is idempotent (unique (name, spec_hash), ON CONFLICT DO
 * NOTHING) and numbered under a per-name advisory lock; alias moves are a
 * compare-and-set on a row held FOR UPDATE; every move NOTIFYs, so replicas
 * drop their cached alias targets.
 */
import { Client, Pool, PoolClient } from "pg";
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
  RegistryError,
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
import { aliasesOf, toEvent, toRunEvent, toUse, toVersion, toVersionInfo } from "./sqlite";

const CHANNEL = "lrbridge_alias";

const SCHEMA = schemaSql({ float: "DOUBLE PRECISION", int64: "BIGINT", autoId: "BIGSERIAL PRIMARY KEY" });

type Row = Record<string, unknown>;
type Listener = (moved: { name: string; alias: string } | null) => void;

export class PostgresStore implements Store {
  readonly kind = "postgres";
  readonly notifies = true;
  private readonly listeners: Listener[] = [];
  private listenClient: Client | null = null;
  private listenRetry: NodeJS.Timeout | null = null;
  private closed = false;

  private constructor(
    private readonly pool: Pool,
    private readonly url: string,
  ) {}

  static async open(url: string): Promise<PostgresStore> {
    const pool = new Pool({ connectionString: url, max: 4, connectionTimeoutMillis: 3000, idleTimeoutMillis: 30_000 });
    // An idle client losing its server must not take the process down; the next query reports it.
    pool.on("error", () => {});
    const store = new PostgresStore(pool, url);
    try {
      await pool.query("SELECT pg_advisory_lock(727272)");
      try {
        await pool.query(SCHEMA);
      } finally {
        await pool.query("SELECT pg_advisory_unlock(727272)");
      }
    } catch (err) {
      await pool.end().catch(() => {});
      throw unavailable("postgres", err);
    }
    return store;
  }

  private async query(sql: string, params: unknown[] = []): Promise<Row[]> {
    try {
      return (await this.pool.query(sql, params)).rows as Row[];
    } catch (err) {
      throw unavailable(this.kind, err);
    }
  }

  private async tx<T>(fn: (c: PoolClient) => Promise<T>): Promise<T> {
    let client: PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw unavailable(this.kind, err);
    }
    let broken = false;
    try {
      await client.query("BEGIN");
      const out = await fn(client);
      await client.query("COMMIT");
      return out;
    } catch (err) {
      try {
        await client.query("ROLLBACK");
      } catch {
        broken = true;
      }
      throw unavailable(this.kind, err);
    } finally {
      client.release(broken);
    }
  }

  async publish(p: Publish): Promise<{ version: Version; created: boolean }> {
    return this.tx(async (c) => {
      // Numbering is per name: publishers of one name take turns, others do not wait.
      await c.query("SELECT pg_advisory_xact_lock(hashtext($1))", [p.name]);
      const inserted = await c.query(
        `INSERT INTO versions (name, version, spec_hash, canonical, message, author, created_at)
         SELECT $1, COALESCE(MAX(version), 0) + 1, $2, $3, $4, $5, $6 FROM versions WHERE name = $1
         ON CONFLICT (name, spec_hash) DO NOTHING RETURNING *`,
        [p.name, p.spec_hash, JSON.stringify(p.canonical), p.message, p.author, p.at],
      );
      if (inserted.rows.length === 1) return { version: toVersion(inserted.rows[0]), created: true };
      const existing = await c.query("SELECT * FROM versions WHERE name = $1 AND spec_hash = $2", [p.name, p.spec_hash]);
      return { version: toVersion(existing.rows[0]), created: false };
    });
  }

  async version(name: string, version: number): Promise<Version | null> {
    const rows = await this.query("SELECT * FROM versions WHERE name = $1 AND version = $2", [name, version]);
    return rows.length ? toVersion(rows[0]) : null;
  }

  async latest(name: string): Promise<Version | null> {
    const rows = await this.query("SELECT * FROM versions WHERE name = $1 ORDER BY version DESC LIMIT 1", [name]);
    return rows.length ? toVersion(rows[0]) : null;
  }

  async versionByHash(name: string, specHash: string): Promise<Version | null> {
    const rows = await this.query("SELECT * FROM versions WHERE name = $1 AND spec_hash = $2", [name, specHash]);
    return rows.length ? toVersion(rows[0]) : null;
  }

  async aliasTarget(name: string, alias: string): Promise<number | null> {
    const rows = await this.query("SELECT version FROM aliases WHERE name = $1 AND alias = $2", [name, alias]);
    return rows.length ? Number(rows[0].version) : null;
  }

  async moveAlias(m: AliasMove): Promise<AliasEvent> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.tx(async (c) => {
          const exists = await c.query("SELECT 1 FROM versions WHERE name = $1 AND version = $2", [m.name, m.to]);
          if (exists.rows.length === 0) throw unknownVersion(m.name, m.to);
          const held = await c.query("SELECT version FROM aliases WHERE name = $1 AND alias = $2 FOR UPDATE", [m.name, m.alias]);
          const from = held.rows.length ? Number(held.rows[0].version) : null;
          if (m.expect !== undefined && m.expect !== from) throw aliasConflict(m, from);
          if (from === null) {
            // No row to lock: the primary key decides between two creators.
            const created = await c.query("INSERT INTO aliases (name, alias, version) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", [m.name, m.alias, m.to]);
            if (created.rowCount === 0) throw new RaceLost();
          } else {
            await c.query("UPDATE aliases SET version = $3 WHERE name = $1 AND alias = $2", [m.name, m.alias, m.to]);
          }
          await c.query("INSERT INTO alias_events (name, alias, from_version, to_version, who, why, at) VALUES ($1, $2, $3, $4, $5, $6, $7)", [
            m.name,
            m.alias,
            from,
            m.to,
            m.who,
            m.why,
            m.at,
          ]);
          await c.query("SELECT pg_notify($1, $2)", [CHANNEL, JSON.stringify({ name: m.name, alias: m.alias })]);
          return { alias: m.alias, from, to: m.to, who: m.who, why: m.why, at: m.at };
        });
      } catch (err) {
        if (!(err instanceof RegistryError && err.message === RACE_LOST)) throw err;
        // Another creator won: a conditional move lost; an unconditional one moves it again.
        if (m.expect !== undefined || attempt >= 3) throw aliasConflict(m, await this.aliasTarget(m.name, m.alias));
      }
    }
  }

  async history(name: string, at?: number): Promise<History> {
    const versions = (await this.query("SELECT name, version, spec_hash, message, author, created_at FROM versions WHERE name = $1 ORDER BY version", [name])).map(
      toVersionInfo,
    );
    const events = (await this.query("SELECT * FROM alias_events WHERE name = $1 AND at <= $2 ORDER BY id", [name, at ?? Number.MAX_VALUE])).map(toEvent);
    return { versions, aliases: aliasesOf(events), events };
  }

  async recordUse(run: RunIdentity, use: Use, handle: HandleRecord): Promise<void> {
    await this.tx(async (c) => {
      await c.query(
        `INSERT INTO runs (id, name, rank, world_size, host, pid, first_seen, last_seen, last_step) VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8)
         ON CONFLICT (id) DO UPDATE SET name = COALESCE(excluded.name, runs.name), rank = COALESCE(excluded.rank, runs.rank),
           world_size = COALESCE(excluded.world_size, runs.world_size), host = COALESCE(excluded.host, runs.host),
           pid = COALESCE(excluded.pid, runs.pid), last_seen = GREATEST(runs.last_seen, excluded.last_seen),
           last_step = GREATEST(runs.last_step, excluded.last_step)`,
        [run.id, run.name ?? null, run.rank ?? null, run.world_size ?? null, run.host ?? null, run.pid ?? null, use.at, use.step],
      );
      // The runs row above is locked for this transaction: concurrent opens of one run count in turn.
      const n = await c.query("SELECT COUNT(*) AS n FROM uses WHERE run_id = $1", [run.id]);
      if (Number(n.rows[0].n) < MAX_RUN_USES) await c.query("INSERT INTO uses (run_id, ref, name, version, spec_hash, step, at, hash, groups, last_epoch) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)", [
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
      ]);
      await c.query("INSERT INTO handles (hash, canonical, groups, last_epoch) VALUES ($1, $2, $3, $4) ON CONFLICT (hash) DO NOTHING", [
        handle.hash,
        JSON.stringify(handle.canonical),
        JSON.stringify(handle.groups),
        handle.last_epoch,
      ]);
    });
  }

  async recordEvent(runId: string, event: RunEvent): Promise<void> {
    await this.tx(async (c) => {
      const n = await c.query("SELECT COUNT(*)::int AS n FROM run_events WHERE run_id = $1", [runId]);
      if (Number(n.rows[0].n) >= MAX_RUN_EVENTS) return;
      await c.query("INSERT INTO run_events (run_id, kind, step, data, at) VALUES ($1, $2, $3, $4, $5)", [runId, event.kind, event.step, JSON.stringify(event.data), event.at]);
      await c.query("UPDATE runs SET last_seen = GREATEST(last_seen, $2), last_step = GREATEST(last_step, $3) WHERE id = $1", [runId, event.at, event.step]);
    });
  }

  async touchRun(runId: string, step: number, at: number): Promise<void> {
    await this.query("UPDATE runs SET last_seen = GREATEST(last_seen, $2), last_step = GREATEST(last_step, $3) WHERE id = $1", [runId, at, step]);
  }

  async saveHandle(handle: HandleRecord): Promise<void> {
    await this.query("INSERT INTO handles (hash, canonical, groups, last_epoch) VALUES ($1, $2, $3, $4) ON CONFLICT (hash) DO NOTHING", [
      handle.hash,
      JSON.stringify(handle.canonical),
      JSON.stringify(handle.groups),
      handle.last_epoch,
    ]);
  }

  async handle(hash: string): Promise<HandleRecord | null> {
    const rows = await this.query("SELECT * FROM handles WHERE hash = $1", [hash]);
    if (!rows.length) return null;
    return { hash, canonical: JSON.parse(String(rows[0].canonical)), groups: JSON.parse(String(rows[0].groups)), last_epoch: Number(rows[0].last_epoch) };
  }

  async names(): Promise<string[]> {
    return (await this.query("SELECT DISTINCT name FROM versions ORDER BY name")).map((r) => String(r.name));
  }

  async saveLiveRuns(rows: LiveRunDoc[]): Promise<void> {
    if (!rows.length) return;
    // One statement per batch: replicas' rows for other runs are untouched.
    const params: unknown[] = [];
    const values = rows.map((r, i) => {
      params.push(r.id, r.last_seen, r.row);
      return `($${3 * i + 1}, $${3 * i + 2}, $${3 * i + 3})`;
    });
    await this.query(
      `INSERT INTO live_runs (id, last_seen, row) VALUES ${values.join(", ")} ON CONFLICT (id) DO UPDATE SET last_seen = EXCLUDED.last_seen, row = EXCLUDED.row WHERE live_runs.last_seen <= EXCLUDED.last_seen`,
      params,
    );
  }

  async liveRuns(limit: number): Promise<LiveRunDoc[]> {
    const rows = await this.query("SELECT id, last_seen, row FROM live_runs ORDER BY last_seen DESC, id LIMIT $1", [limit]);
    return rows.map((r) => ({ id: String(r.id), last_seen: Number(r.last_seen), row: String(r.row) }));
  }

  async runs(q: RunQuery): Promise<RunRecord[]> {
    let rows: Row[];
    if (q.run !== undefined) rows = await this.query("SELECT * FROM runs WHERE id = $1", [q.run]);
    else if (q.name !== undefined && q.version !== undefined) {
      rows = await this.query(`SELECT * FROM runs WHERE id IN (SELECT run_id FROM uses WHERE name = $1 AND version = $2) ORDER BY last_seen DESC, id LIMIT ${MAX_RUNS}`, [
        q.name,
        q.version,
      ]);
    } else if (q.name !== undefined) {
      rows = await this.query(`SELECT * FROM runs WHERE id IN (SELECT run_id FROM uses WHERE name = $1) ORDER BY last_seen DESC, id LIMIT ${MAX_RUNS}`, [q.name]);
    } else rows = await this.query(`SELECT * FROM runs ORDER BY last_seen DESC, id LIMIT ${MAX_RUNS}`);
    if (rows.length === 0) return [];
    const ids = rows.map((r) => String(r.id));
    const listed = q.run !== undefined ? MAX_RUN_USES : MAX_LISTED_USES;
    const uses = await this.query(
      `SELECT * FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY run_id ORDER BY id) AS nth, COUNT(*) OVER (PARTITION BY run_id) AS total
         FROM uses WHERE run_id = ANY($1)) u WHERE nth <= $2 ORDER BY id`,
      [ids, listed],
    );
    const byRun = new Map<string, { uses: Use[]; total: number }>(ids.map((id) => [id, { uses: [], total: 0 }]));
    for (const u of uses) {
      const entry = byRun.get(String(u.run_id));
      if (!entry) continue;
      entry.uses.push(toUse(u));
      entry.total = Number(u.total);
    }
    const events = q.run !== undefined ? (await this.query("SELECT * FROM run_events WHERE run_id = $1 ORDER BY id", [q.run])).map(toRunEvent) : undefined;
    return rows.map((row) => {
      const entry = byRun.get(String(row.id)) ?? { uses: [], total: 0 };
      return toRunRecord(row as unknown as RunRow, entry.uses, entry.total, events);
    });
  }

  watch(listener: Listener): void {
    this.listeners.push(listener);
    if (!this.listenClient && !this.listenRetry) void this.listen();
  }

  /** One dedicated connection LISTENs; when it drops, listeners hear `null` (moves may be missed) and it reconnects. */
  private async listen(): Promise<void> {
    if (this.closed) return;
    const client = new Client({ connectionString: this.url, connectionTimeoutMillis: 3000 });
    const lost = () => {
      if (this.listenClient !== client) return;
      this.listenClient = null;
      client.end().catch(() => {});
      this.tell(null);
      this.retryListen();
    };
    client.on("error", lost);
    client.on("end", lost);
    client.on("notification", (msg) => {
      try {
        const moved = JSON.parse(msg.payload ?? "") as { name: string; alias: string };
        this.tell(moved);
      } catch {
        this.tell(null);
      }
    });
    try {
      this.listenClient = client;
      await client.connect();
      await client.query(`LISTEN ${CHANNEL}`);
      // Anything cached before this point may be stale.
      this.tell(null);
    } catch {
      lost();
    }
  }

  private retryListen(): void {
    if (this.closed || this.listenRetry) return;
    this.listenRetry = setTimeout(() => {
      this.listenRetry = null;
      void this.listen();
    }, 500);
    this.listenRetry.unref();
  }

  private tell(moved: { name: string; alias: string } | null): void {
    for (const l of this.listeners) l(moved);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.listenRetry) clearTimeout(this.listenRetry);
    const client = this.listenClient;
    this.listenClient = null;
    if (client) await client.end().catch(() => {});
    await this.pool.end().catch(() => {});
  }
}

const RACE_LOST = "alias created concurrently";
class RaceLost extends RegistryError {
  constructor() {
    super("ALIAS_CONFLICT", RACE_LOST);
  }
}
