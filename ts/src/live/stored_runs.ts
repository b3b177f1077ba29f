/**
 * The run table of a server with a registry store: the in-memory table,
 * read back from the store at start and written to it in batches (at most
 * one write a second, only the rows that changed), so the runs survive a
 * restart. A heartbeat never waits for the store.
 */
import type { HeartbeatRequest } from "./heartbeat";
import { DEFAULT_LOST_AFTER_S, MemoryRunTable, RUN_CAPACITY, type RunRow, type ScheduleInfo } from "./runs";
import type { Store } from "../registry/store";

export const FLUSH_MS = 1000;

export class StoredRunTable extends MemoryRunTable {
  private readonly dirty = new Set<string>();
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> = Promise.resolve();
  private closed = false;
  /** Rows written since start (for tests and logs). */
  writes = 0;

  private constructor(
    private readonly store: Pick<Store, "saveLiveRuns" | "liveRuns">,
    private readonly log: (line: string) => void,
    lostAfterS: number,
    capacity: number,
    private readonly flushMs: number,
  ) {
    super(lostAfterS, capacity);
  }

  /** The table with the store's rows read back (a row the store cannot parse is skipped). */
  static async open(
    store: Pick<Store, "saveLiveRuns" | "liveRuns">,
    options: { log?: (line: string) => void; lostAfterS?: number; capacity?: number; flushMs?: number } = {},
  ): Promise<StoredRunTable> {
    const capacity = options.capacity ?? RUN_CAPACITY;
    const table = new StoredRunTable(store, options.log ?? (() => {}), options.lostAfterS ?? DEFAULT_LOST_AFTER_S, capacity, options.flushMs ?? FLUSH_MS);
    const docs = await store.liveRuns(capacity);
    for (const doc of docs.reverse()) {
      try {
        const row = JSON.parse(doc.row) as RunRow;
        if (typeof row?.id === "string" && typeof row.last_seen === "number") table.restore({ ...row, changes: Array.isArray(row.changes) ? row.changes : [] });
      } catch {
        // a row from another version of the server: left in the store, not shown
      }
    }
    return table;
  }

  override heartbeat(hb: HeartbeatRequest, at: number, schedule?: ScheduleInfo): void {
    super.heartbeat(hb, at, schedule);
    if (this.closed) return;
    this.dirty.add(hb.run.id);
    if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = null;
        void this.flush();
      }, this.flushMs);
      this.timer.unref();
    }
  }

  /** Writes the rows changed since the last flush (one transaction). */
  flush(): Promise<void> {
    const next = this.flushing.then(async () => {
      if (!this.dirty.size) return;
      const docs = [];
      for (const id of this.dirty) {
        const row = this.rows.get(id);
        if (row) docs.push({ id, last_seen: row.last_seen, row: JSON.stringify(row) });
      }
      this.dirty.clear();
      try {
        await this.store.saveLiveRuns(docs);
        this.writes += docs.length;
      } catch (err) {
        // The live view stays right in memory; the next heartbeat of these runs writes them again.
        this.log(`${new Date().toISOString()} live view: ${docs.length} run rows not saved: ${err instanceof Error ? err.message : String(err)}`);
      }
    });
    this.flushing = next;
    return next;
  }

  /** Stops the timer and writes what is left (before the store closes). */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.flush();
  }
}
