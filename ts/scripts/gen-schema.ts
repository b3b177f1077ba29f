/**
 * Writes proto/schema.json, the spec grammar recorded from the readers
 * (ts/src/grammar.ts). `make schema`; a test fails while the committed file
 * differs from what this writes.
 *   npx ts-node ts/scripts/gen-schema.ts
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { schemaJson } from "../src/grammar";
import { loadSandbox } from "../src/modules/sandbox";

const out = join(__dirname, "..", "..", "proto", "schema.json");
loadSandbox().then(() => {
  writeFileSync(out, schemaJson());
  console.log(`wrote ${out}`);
});
