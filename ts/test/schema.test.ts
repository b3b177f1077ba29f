import { readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { buildSchema, schemaJson } from "../src/grammar";
import { TORCH_TYPES, validateTorchSpec } from "../src/torch/validate";
import { SCHEDULE_TYPES, parseSchedule } from "../src/library/parse";
import { SpecError } from "../src/core/api";
import { loadSandbox } from "../src/modules/sandbox";

const SCHEMA_FILE = join(__dirname, "..", "..", "proto", "schema.json");

beforeAll(loadSandbox);

describe("proto/schema.json", () => {
  it("is what the readers record (regenerate with `make schema`)", () => {
    expect(readFileSync(SCHEMA_FILE, "utf8")).toBe(schemaJson());
  });

  it("lists every type of both families", () => {
    const types = buildSchema().types;
    for (const t of TORCH_TYPES) expect(types[t]?.family, t).toBe("torch");
    for (const t of [...SCHEDULE_TYPES, "range_test"]) expect(types[t]?.family, t).toBe("library");
  });

  it("marks as required exactly the fields whose absence the reader refuses", () => {
    // Drop one required field from a spec that has all of them: the reader must name it.
    const types = buildSchema().types;
    const examples: Record<string, Record<string, unknown>> = {
      StepLR: { type: "StepLR", step_size: 3 },
      CosineAnnealingLR: { type: "CosineAnnealingLR", T_max: 10 },
      CyclicLR: { type: "CyclicLR", base_lr: 0.01, max_lr: 0.1 },
      linear: { type: "linear", total_steps: 10 },
      exponential: { type: "exponential", total_steps: 10, end: 0.1 },
      fractal: { type: "fractal", horizon: 8, lambda_min: 0.1, lambda_max: 1 },
      snapshot: { type: "snapshot", total_steps: 10, snapshots: 2 },
    };
    for (const [t, spec] of Object.entries(examples)) {
      const required = Object.entries(types[t].fields).filter(([, d]) => d.required).map(([k]) => k);
      expect(required.sort(), t).toEqual(Object.keys(spec).filter((k) => k !== "type").sort());
      const read = (s: unknown) => (types[t].family === "torch" ? validateTorchSpec(s, 1) : parseSchedule("", s));
      expect(() => read(spec)).not.toThrow();
      for (const k of required) {
        const { [k]: _dropped, ...rest } = spec;
        expect(() => read(rest), `${t} without ${k}`).toThrow(SpecError);
      }
    }
  });
});
