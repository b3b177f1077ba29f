/**
 * `lrbridge compile FILE.ts [--params JSON]`: type-check and transpile a
 * schedule module, evaluate and probe it in the sandbox as a server would,
 * and print its spec node `{"type": "module", "code", "library", "params"}`.
 */
import { bind } from "../bind";
import { CompileError, loadSandbox, readParams } from "../modules";
import { compileModule } from "../modules/compile";
import { UsageError, reportCliError } from "./eval";

const USAGE = `usage: lrbridge compile FILE.ts [--params JSON]

Prints the module's spec node as JSON (usable wherever a spec is: open,
eval --spec, lrbridge.Schedule). Exit 2 when the module does not compile or
is refused by the probe (message on stderr).
`;

export async function run(args: string[]): Promise<number> {
  try {
    let file: string | undefined;
    let params: string | undefined;
    for (let i = 0; i < args.length; i++) {
      const [flag, inline] = args[i].split(/=(.*)/s, 2);
      if (flag === "-h" || flag === "--help") {
        process.stdout.write(USAGE);
        return 0;
      }
      if (flag === "--params") params = inline ?? args[++i];
      else if (!flag.startsWith("-") && file === undefined) file = args[i];
      else throw new UsageError(`unknown option '${args[i]}'`);
    }
    if (!file) throw new UsageError("give the module's file");
    let parsedParams: Record<string, unknown>;
    try {
      parsedParams = readParams(params);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    await loadSandbox();
    const spec = compileModule(file, parsedParams);
    bind(spec, [{ lr: 1 }]); // evaluate and probe it as a server will
    process.stdout.write(`${JSON.stringify(spec)}\n`);
    return 0;
  } catch (err) {
    if (err instanceof CompileError) {
      process.stderr.write(`lrbridge compile: ${err.message}\n`);
      return 2;
    }
    return reportCliError("compile", USAGE, err);
  }
}
