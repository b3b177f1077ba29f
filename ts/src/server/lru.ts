/**
 * The bound-spec cache: bounded in entries and in (estimated) bytes. Each
 * entry belongs to the peer that last opened it. When the cache is over a
 * bound, the peer holding the most bytes loses its least recently used
 * entry, so a peer that opens a flood of schedules evicts its own before an
 * honest client's; among equal holders it is plain LRU.
 */
interface Entry<V> {
  value: V;
  bytes: number;
  owner: string;
  /** Last touch, for LRU among owners. */
  seq: number;
}

interface Holding<K> {
  bytes: number;
  /** Insertion order = least recently used first. */
  keys: Set<K>;
}

export class LruCache<K, V> {
  private readonly entries = new Map<K, Entry<V>>();
  private readonly owners = new Map<string, Holding<K>>();
  private totalBytes = 0;
  private clock = 0;

  constructor(
    readonly capacity: number,
    readonly maxBytes = Infinity,
  ) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) throw new RangeError(`cache capacity must be an integer >= 1, got ${capacity}`);
    if (!(maxBytes > 0)) throw new RangeError(`cache byte budget must be > 0, got ${maxBytes}`);
  }

  get size(): number {
    return this.entries.size;
  }

  /** Estimated bytes held. */
  get bytes(): number {
    return this.totalBytes;
  }

  get(key: K): V | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    this.touch(key, entry);
    return entry.value;
  }

  /** Oldest first. */
  *values(): IterableIterator<V> {
    for (const entry of this.entries.values()) yield entry.value;
  }

  set(key: K, value: V, bytes = 0, owner = ""): void {
    this.remove(key);
    const entry: Entry<V> = { value, bytes, owner, seq: 0 };
    this.entries.set(key, entry);
    let holding = this.owners.get(owner);
    if (!holding) this.owners.set(owner, (holding = { bytes: 0, keys: new Set() }));
    holding.bytes += bytes;
    this.totalBytes += bytes;
    this.touch(key, entry);
    // The entry just set stays even when it alone is over the byte budget: its opener is about to use it.
    while (this.entries.size > 1 && (this.entries.size > this.capacity || this.totalBytes > this.maxBytes)) {
      const victim = this.victim(key);
      if (victim === undefined) break;
      this.remove(victim);
    }
  }

  private touch(key: K, entry: Entry<V>): void {
    entry.seq = ++this.clock;
    this.entries.delete(key);
    this.entries.set(key, entry);
    const keys = this.owners.get(entry.owner)!.keys;
    keys.delete(key);
    keys.add(key);
  }

  private remove(key: K): void {
    const entry = this.entries.get(key);
    if (!entry) return;
    this.entries.delete(key);
    const holding = this.owners.get(entry.owner)!;
    holding.keys.delete(key);
    holding.bytes -= entry.bytes;
    this.totalBytes -= entry.bytes;
    if (holding.keys.size === 0) this.owners.delete(entry.owner);
  }

  /** The least recently used entry of the heaviest owner (not `keep`). */
  private victim(keep: K): K | undefined {
    let best: { key: K; bytes: number; seq: number } | undefined;
    for (const holding of this.owners.values()) {
      let oldest: K | undefined;
      for (const k of holding.keys) {
        if (k !== keep) {
          oldest = k;
          break;
        }
      }
      if (oldest === undefined) continue;
      const seq = this.entries.get(oldest)!.seq;
      // By held entries when no bytes are given (plain LRU among equals).
      const weight = holding.bytes + holding.keys.size * 1e-9;
      if (!best || weight > best.bytes || (weight === best.bytes && seq < best.seq)) best = { key: oldest, bytes: weight, seq };
    }
    return best?.key;
  }
}
