import { homedir } from "node:os";
import { join } from "node:path";

/** The embedded store's file: registry.sqlite under $XDG_DATA_HOME/lrbridge, else ~/.local/share/lrbridge. */
export function defaultRegistryPath(): string {
  const data = process.env.XDG_DATA_HOME || join(homedir(), ".local", "share");
  return join(data, "lrbridge", "registry.sqlite");
}
