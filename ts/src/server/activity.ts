/**
 * What the schedules in use are doing, for `stats` / `lrbridge top`. Soft
 * state: it never changes a reply, a restart clears it, and it is bounded
 * (the least recently active schedules are forgotten first).
 */
import type { Bound } from "../core/api";
import type { ScheduleActivity } from "../protocol";
import { escapeLabel, redactLabel } from "./labels";
import { LruCache } from "./lru";

export const ACTIVITY_CAPACITY = 1024;
const MAX_CLIENTS_SHOWN = 8;

export class Activity {
  private readonly table = new LruCache<string, ScheduleActivity>(ACTIVITY_CAPACITY);

  constructor(private readonly now: () => number = Date.now) {}

  opened(hash: string, bound: Bound, client?: string): void {
    const entry = this.entry(hash, bound);
    entry.opens += 1;
    if (client) client = escapeLabel(client);
    if (client && !entry.clients.includes(client)) {
      entry.clients.push(client);
      if (entry.clients.length > MAX_CLIENTS_SHOWN) entry.clients.shift();
    }
  }

  served(hash: string, bound: Bound, end: number): void {
    const entry = this.entry(hash, bound);
    entry.windows += 1;
    if (end > entry.rows_served) entry.rows_served = end;
  }

  stepped(hash: string, bound: Bound): void {
    this.entry(hash, bound).metric_steps += 1;
  }

  /** Most recently active first; client labels redacted unless the asker is `authenticated`. */
  list(authenticated = true): ScheduleActivity[] {
    return [...this.table.values()]
      .reverse()
      .map((e) => ({ ...e, clients: authenticated ? [...e.clients] : e.clients.map(redactLabel) }));
  }

  private entry(hash: string, bound: Bound): ScheduleActivity {
    const t = this.now() / 1000;
    let entry = this.table.get(hash);
    if (!entry) {
      const canonical = bound.canonical as { type?: unknown };
      entry = {
        hash,
        spec_hash: bound.specHash,
        type: typeof canonical.type === "string" ? canonical.type : "?",
        groups: bound.groups,
        kind: bound.kind,
        clients: [],
        opens: 0,
        windows: 0,
        metric_steps: 0,
        rows_served: 0,
        row_end: bound.rowEnd ?? null,
        first_seen: t,
        last_seen: t,
      };
      this.table.set(hash, entry);
    }
    entry.last_seen = t;
    return entry;
  }
}
