#!/usr/bin/env node
/** `lrbridge <command>`: each command lives in its own module, loaded on demand. */

const USAGE = `usage: lrbridge <command> [options]

commands:
  eval   print a schedule's values as torch would produce them (JSON)
  plot   draw schedules' lr and momentum curves (-o FILE.svg|FILE.png)
  serve  serve schedules over ZeroMQ (--bind tcp://127.0.0.1:5555 | ipc://PATH)
  top    live view of the schedules a server is serving (--connect ENDPOINT)
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case "eval":
      return (await import("./commands/eval")).run(rest);
    case "plot":
      return (await import("./commands/plot")).run(rest);
    case "serve":
      return (await import("./server/main")).run(rest);
    case "top":
      return (await import("./commands/top")).run(rest);
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
