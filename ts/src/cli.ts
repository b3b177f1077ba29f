#!/usr/bin/env node
/** `lrbridge <command>`: each command lives in its own module, loaded on demand. */

const USAGE = `usage: lrbridge <command> [options]

commands:
  compile  type-check a TypeScript schedule module and print its spec node (JSON)
  eval   print a schedule's values as torch would produce them (JSON)
  keys   generate a CURVE key pair for a server or a client (DIR [NAME])
  plot   draw schedules' lr and momentum curves (-o FILE.svg|FILE.png)
  serve  serve schedules over ZeroMQ (--bind tcp://127.0.0.1:5555 | ipc://PATH)
  top    live view of the schedules a server is serving (--connect ENDPOINT)

registry (--connect ENDPOINT, or --registry PATH|postgres://…):
  publish NAME SPEC.json -m WHY   versions NAME   show REF
  alias NAME ALIAS VERSION [--expect V]   diff REF REF --steps N
  runs REF   replay RUN [--steps N] [--export-spec]
`;

// Node 22 is the oldest with what the server uses; the wheel pins Node 24, and the
// same spec gives the same bits only on the same engine.
const MIN_NODE_MAJOR = 22;

// V8's compile cache on disk (os.tmpdir()/node-compile-cache, keyed by file
// content and Node version): a server start skips most of compiling its
// modules, which is most of what an embedded server's start costs.
// NODE_DISABLE_COMPILE_CACHE=1 turns it off.
(require("node:module") as { enableCompileCache?: () => unknown }).enableCompileCache?.();

async function main(argv: string[]): Promise<number> {
  const major = Number(process.versions.node.split(".")[0]);
  if (major < MIN_NODE_MAJOR) {
    process.stderr.write(
      `lrbridge: Node ${process.versions.node} is too old (needs >= ${MIN_NODE_MAJOR}); ` +
        `point LRBRIDGE_NODE at a newer node, or unset it to use the Node pinned by the lrbridge wheel\n`,
    );
    return 1;
  }
  const [command, ...rest] = argv;
  switch (command) {
    case "compile":
      return (await import("./commands/compile")).run(rest);
    case "eval":
      return (await import("./commands/eval")).run(rest);
    case "keys":
      return (await import("./commands/keys")).run(rest);
    case "plot":
      return (await import("./commands/plot")).run(rest);
    case "serve":
      return (await import("./commands/serve")).run(rest);
    case "top":
      return (await import("./commands/top")).run(rest);
    case "publish":
    case "versions":
    case "show":
    case "alias":
    case "diff":
    case "runs":
    case "replay":
      return (await import("./commands/registry")).run(command, rest);
    case undefined:
    case "-h":
    case "--help":
      process.stdout.write(USAGE);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`lrbridge: unknown command '${command}'\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== undefined) process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`lrbridge: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exitCode = 1;
  },
);
