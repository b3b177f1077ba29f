/**
 * `lrbridge serve --watch DIR`: the schedule modules in DIR published as
 * new versions whenever they are saved, for authors working locally.
 *
 * `DIR/NAME.ts` is published as `NAMESPACE/NAME` (`--watch-namespace`,
 * default `local`); `DIR/NAME.params.json`, when present, holds the params it
 * is probed with (a module whose default export takes params needs them).
 * Publishing is by content, so a save that does not change the emitted
 * code keeps the version. A module that does not compile or is refused is
 * logged and its last version keeps being served.
 */
import { existsSync, readFileSync, readdirSync, watch, type FSWatcher } from "node:fs";
import { basename, join } from "node:path";
import type { Registry } from "../registry/registry";
import { compileModule } from "./compile";

export const DEFAULT_WATCH_NAMESPACE = "local";
/** Editors write a file in several steps: publish once it has been quiet this long. */
const SETTLE_MS = 150;
const NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;

export interface Watcher {
  /** Publish every module in the directory now (at start). */
  scan(): Promise<void>;
  close(): void;
}

export function watchModules(dir: string, namespace: string, registry: Registry, log: (line: string) => void): Watcher {
  const pending = new Map<string, NodeJS.Timeout>();
  let queue: Promise<void> = Promise.resolve();

  const moduleOf = (file: string): string | null => {
    if (file.endsWith(".params.json")) return `${file.slice(0, -".params.json".length)}.ts`;
    if (file.endsWith(".ts") && !file.endsWith(".d.ts")) return file;
    return null;
  };

  const publish = async (file: string): Promise<void> => {
    const stem = basename(file, ".ts");
    const path = join(dir, file);
    if (!existsSync(path)) return;
    if (!NAME.test(stem)) {
      log(`lrbridge watch: ${file}: not published (a name is lowercase [a-z0-9._-], at most 64 characters)`);
      return;
    }
    const name = `${namespace}/${stem}`;
    try {
      const paramsFile = join(dir, `${stem}.params.json`);
      const params = existsSync(paramsFile) ? (JSON.parse(readFileSync(paramsFile, "utf8")) as Record<string, unknown>) : undefined;
      const { params: _none, ...node } = compileModule(path);
      const { version, created } = await registry.publish(name, node, `saved ${file}`, process.env.USER ?? "", params);
      log(`lrbridge watch: ${name}@${version.version} sha256:${version.spec_hash.slice(0, 12)} ${created ? "published" : "unchanged"}`);
    } catch (err) {
      log(`lrbridge watch: ${name}: not published: ${err instanceof Error ? err.message : String(err)}`);
    }
  };

  // One publish at a time, in save order: compiling is synchronous and versions are numbered in order.
  const enqueue = (file: string) => {
    queue = queue.then(() => publish(file));
    return queue;
  };

  let watcher: FSWatcher | null = watch(dir, (_event, name) => {
    const file = name ? moduleOf(name.toString()) : null;
    if (!file) return;
    clearTimeout(pending.get(file));
    pending.set(
      file,
      setTimeout(() => {
        pending.delete(file);
        void enqueue(file);
      }, SETTLE_MS),
    );
  });

  return {
    async scan() {
      for (const file of readdirSync(dir).sort()) if (moduleOf(file) === file) await enqueue(file);
    },
    close() {
      for (const t of pending.values()) clearTimeout(t);
      watcher?.close();
      watcher = null;
    },
  };
}
