/**
 * Schedule modules: the sandbox and the `module` spec type. Compiling
 * (./compile, which loads the TypeScript compiler) is imported only where a
 * module is compiled, so a server or an eval of a plain spec never loads it.
 */
import "./spec";
import { loadSandbox } from "./sandbox";

export { CompileError } from "./errors";
export { LIBRARY_IMPORT, Sandbox, SandboxError, libraryVersion, loadSandbox, sandboxLoaded } from "./sandbox";
export { BLOCK_ROWS, ModuleFailure, PROBE_STEPS } from "./spec";

/** Whether a spec holds a `{"type": "module"}` node anywhere (iterative: specs may be deep). */
export function containsModule(spec: unknown): boolean {
  const stack = [spec];
  while (stack.length) {
    const v = stack.pop();
    if (v === null || typeof v !== "object") continue;
    if (!Array.isArray(v) && (v as { type?: unknown }).type === "module") return true;
    stack.push(...Object.values(v as object));
  }
  return false;
}

/** Load the sandbox when the spec needs it (other specs start no wasm). */
export async function prepareFor(spec: unknown): Promise<void> {
  if (containsModule(spec)) await loadSandbox();
}

/** `--params` text → params object. */
export function readParams(text: string | undefined): Record<string, unknown> {
  if (text === undefined) return {};
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new TypeError(`--params: not valid JSON: ${(err as Error).message}`);
  }
  if (v === null || typeof v !== "object" || Array.isArray(v)) throw new TypeError("--params must be a JSON object");
  return v as Record<string, unknown>;
}
