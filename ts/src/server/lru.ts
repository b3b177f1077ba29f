/**
 * The bound-spec cache: bounded in entries and in (estimated) bytes. Each
 * entry belongs to the peer that last opened it. When the cache is over a
 * bound, the victim is taken among the least recently used entries: the
 * oldest one of the peer that holds the most bytes among their owners. So a
 * peer that floods heavy opens evicts its own before an honest client's, and
 * among equal holders it is plain LRU. Looking at a fixed number of the
 * oldest entries keeps an eviction O(1) however many peers there are.
 */
/** How many of the least recently used entries an eviction looks at. */
const VICTIM_WINDOW = 64;

interface Entry<V> {
  value: V;
  bytes: number;
  owner: string;
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

  /** The value without making it recently used (for observers such as the live view). */
  peek(key: K): V | undefined {
    return this.entries.get(key)?.value;
  }

  /** Oldest first. */
  *values(): IterableIterator<V> {
    for (const entry of this.entries.values()) yield entry.value;
  }

  set(key: K, value: V, bytes = 0, owner = ""): void {
    this.remove(key);
    const entry: Entry<V> = { value, bytes, owner };
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

  /** Among the VICTIM_WINDOW least recently used entries (not `keep`): the oldest of the heaviest owner. */
  private victim(keep: K): K | undefined {
    let best: { key: K; weight: number } | undefined;
    let seen = 0;
    for (const [key, entry] of this.entries) {
      if (key === keep) continue;
      const holding = this.owners.get(entry.owner)!;
      // Bytes first, then entries held (plain LRU when no bytes are given); the first seen is the oldest.
      const weight = holding.bytes + holding.keys.size * 1e-6;
      if (!best || weight > best.weight) best = { key, weight };
      if (++seen >= VICTIM_WINDOW) break;
    }
    return best?.key;
  }
}
