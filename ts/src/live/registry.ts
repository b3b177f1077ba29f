/**
 * What the web view reads from a registry store (PROTOCOL.md, "Registry
 * (revision 2.2)"): names, a name's versions and alias history, and a ref
 * resolved to its canonical spec. A server without a store has none, and
 * the registry page says so.
 */
import { bind } from "../bind";
import type { Registry } from "../registry/registry";
import { parseName, parseRef } from "../registry/ref";

export interface RegistryVersion {
  name: string;
  version: number;
  spec_hash: string;
  message: string | null;
  author: string | null;
  created_at: number;
}

export interface AliasEvent {
  alias: string;
  from: number | null;
  to: number;
  who: string | null;
  why: string | null;
  at: number;
}

export interface RegistryHistory {
  name: string;
  versions: RegistryVersion[];
  aliases: Record<string, number>;
  events: AliasEvent[];
}

export interface RegistryView {
  names(): Promise<string[]>;
  history(name: string): Promise<RegistryHistory>;
  /** A ref (`ns/name@selector`) → its version and canonical spec. */
  resolve(ref: string): Promise<RegistryVersion & { canonical: unknown }>;
}

/**
 * Two versions' lr over `steps` rows (one group at lr 1.0, as `diff`
 * defaults), and the first step where they part (null: they never do).
 */
export async function registryOverlay(registry: RegistryView, a: string, b: string, steps: number) {
  const [va, vb] = await Promise.all([registry.resolve(a), registry.resolve(b)]);
  const groups = [{ lr: 1.0 }];
  const rows = (canonical: unknown) => {
    const bound = bind(canonical, groups);
    if (bound.kind !== "deterministic") return null;
    const end = bound.rowEnd === null ? steps : Math.min(steps, bound.rowEnd);
    return Array.from(bound.rows(0, end).lr);
  };
  const la = rows(va.canonical);
  const lb = rows(vb.canonical);
  let firstStep: number | null = null;
  if (la && lb) {
    const n = Math.max(la.length, lb.length);
    for (let k = 0; k < n; k++) {
      if (la[k] !== lb[k]) {
        firstStep = k;
        break;
      }
    }
  }
  const strip = ({ canonical: _canonical, ...rest }: RegistryVersion & { canonical: unknown }) => rest;
  return { a: strip(va), b: strip(vb), lr_a: la, lr_b: lb, first_step: firstStep };
}

/** The view a server's Registry gives the web page (its store's names and history, its own ref resolution). */
export function registryView(registry: Registry): RegistryView {
  return {
    names: () => registry.store.names(),
    async history(name) {
      const h = await registry.history(parseName(name));
      return { name, versions: h.versions, aliases: h.aliases, events: h.events };
    },
    async resolve(ref) {
      const { version } = await registry.resolve(parseRef(ref));
      const { canonical, ...info } = version;
      return { ...info, canonical };
    },
  };
}
