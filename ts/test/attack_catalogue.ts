/**
 * Requests that once stalled or crashed the server, each with the answer it
 * must get now. Shared by ts/test/attacks.test.ts (a real server, an honest
 * client served throughout) and bench/attacks.ts (time and memory per
 * request, before and after).
 */
import { Packr } from "msgpackr";
import { encodeBody } from "../src/protocol";

type Msg = Record<string, unknown>;

export interface Attack {
  name: string;
  /** Requests sent first (opens); their replies are not checked beyond "not INTERNAL". */
  setup?: Msg[];
  /** The attack's body bytes; a function gets the setup replies (for hashes). */
  body: (setupReplies: Msg[]) => Buffer;
  /** How often it is sent. */
  repeat?: number;
  /** What the reply must be: a type, or an error code (and a limit the message names). */
  expect: { type: string; code?: string; mentions?: RegExp };
}

const open = (spec: unknown, groups: Msg[] = [{ lr: 0.1 }], id = 1): Msg => ({ v: 2, id, type: "open", spec, groups });
const windowAt = (start: number, count = 1, extra: Msg = {}) => (setup: Msg[]) =>
  encodeBody({ v: 2, id: 2, type: "window", hash: setup[0].hash, start: BigInt(start), count, ...extra });

/** A range_test metric step whose state carries `losses` losses (and as many steps). */
const rangeTestMetric = (hash: unknown, losses: number): Buffer =>
  encodeBody({
    v: 2,
    id: 2,
    type: "metric",
    hash,
    metric: 1.0,
    state: { step: losses, avg: 1, best: 1, losses: new Array(losses).fill(1), done: false, reason: null, suggestions: null },
  });

const groups = (n: number): Msg[] => Array.from({ length: n }, (_, i) => ({ lr: 0.1 + i * 1e-6, momentum: 0.9 }));

const SEQUENTIAL = {
  type: "SequentialLR",
  schedulers: [{ type: "LinearLR", start_factor: 0.1, total_iters: 10 }, { type: "ExponentialLR", gamma: 0.999 }],
  milestones: [10],
};
const CHAINED = { type: "ChainedScheduler", schedulers: [{ type: "StepLR", step_size: 7 }, { type: "ExponentialLR", gamma: 0.999 }] };

function chainedNested(depth: number): Msg {
  let spec: Msg = { type: "StepLR", step_size: 3 };
  for (let i = 0; i < depth; i++) spec = { type: "ChainedScheduler", schedulers: [spec] };
  return spec;
}

const FAR = 1e12;
const PENDING = { type: "error", code: "REPLAY_PENDING" };
const TOO_FAR = { type: "error", code: "BAD_REQUEST", mentions: /replay_rows/ };

export const ATTACKS: Attack[] = [
  { name: "window far: SequentialLR", setup: [open(SEQUENTIAL)], body: windowAt(FAR), expect: TOO_FAR },
  { name: "window far: ChainedScheduler", setup: [open(CHAINED)], body: windowAt(FAR), expect: TOO_FAR },
  {
    name: "window far: CosineAnnealingWarmRestarts",
    setup: [open({ type: "CosineAnnealingWarmRestarts", T_0: 1, T_mult: 1 })],
    body: windowAt(FAR),
    expect: TOO_FAR,
  },
  { name: "window far: LambdaLR", setup: [open({ type: "LambdaLR", lr_lambda: "0.5 ** (epoch % 7)" })], body: windowAt(FAR), expect: TOO_FAR },
  { name: "window far: StepLR", setup: [open({ type: "StepLR", step_size: 10 })], body: windowAt(FAR), expect: TOO_FAR },
  {
    name: "rebase far: StepLR",
    setup: [open({ type: "StepLR", step_size: 10 })],
    body: windowAt(FAR, 1, { type: "rebase", origin: { step: 5, lr: [0.05] } }),
    expect: TOO_FAR,
  },
  {
    name: "window far: OneCycleLR total_steps 2^52 (known end: served)",
    setup: [open({ type: "OneCycleLR", max_lr: 0.5, total_steps: 2 ** 52 }, groups(1))],
    body: windowAt(FAR, 64),
    expect: { type: "window" },
  },
  { name: "window 3e9 (within replay_rows): SequentialLR", setup: [open(SEQUENTIAL)], body: windowAt(3e9), repeat: 5, expect: PENDING },
  {
    name: "window 3e5 of a ChainedScheduler over 4096 groups",
    setup: [open(CHAINED, groups(4096))],
    body: windowAt(300_000),
    repeat: 3,
    expect: PENDING,
  },
  {
    name: "ChainedScheduler nested 40 deep",
    body: () => encodeBody(open(chainedNested(40))),
    expect: { type: "error", code: "BAD_FRAME", mentions: /nesting deeper/ },
  },
  {
    name: "ChainedScheduler nested 7 deep (the deepest spec_depth allows)",
    body: () => encodeBody(open(chainedNested(7))),
    expect: { type: "opened" },
  },
  {
    name: "shared-child tree through msgpackr references",
    body: () => {
      let spec: Msg = { type: "StepLR", step_size: 3 };
      for (let i = 0; i < 20; i++) spec = { type: "ChainedScheduler", schedulers: [spec, spec, spec, spec] };
      return new Packr({ structuredClone: true, useRecords: false }).pack(open(spec));
    },
    expect: { type: "error", code: "BAD_FRAME", mentions: /not plain msgpack/ },
  },
  {
    name: "min() of 150k arguments",
    body: () => encodeBody(open({ type: "LambdaLR", lr_lambda: `min(${Array(150_000).fill("1").join(",")})` })),
    expect: { type: "error", code: "SPEC_INVALID", mentions: /expr_length/ },
  },
  {
    name: "join of 60k pieces",
    body: () =>
      encodeBody(
        open({
          type: "join",
          schedules: Array.from({ length: 60_000 }, () => ({ type: "constant" })),
          boundaries: Array.from({ length: 59_999 }, () => 1),
        }),
      ),
    expect: { type: "error", code: "BAD_FRAME", mentions: /more than 100000 values/ },
  },
  {
    name: "join of 9000 pieces (under body_nodes, over spec_nodes)",
    body: () =>
      encodeBody(
        open({
          type: "join",
          schedules: Array.from({ length: 9000 }, () => ({ type: "constant" })),
          boundaries: Array.from({ length: 8999 }, () => 1),
        }),
      ),
    expect: { type: "error", code: "SPEC_INVALID", mentions: /spec_nodes/ },
  },
  {
    name: "join of 300 pieces (over pieces, under spec_nodes)",
    body: () =>
      encodeBody(
        open({
          type: "join",
          schedules: Array.from({ length: 300 }, () => ({ type: "constant" })),
          boundaries: Array.from({ length: 299 }, (_, i) => i + 1),
        }),
      ),
    expect: { type: "error", code: "SPEC_INVALID", mentions: /pieces/ },
  },
  {
    name: "range_test state with 200k losses",
    setup: [open({ type: "range_test", num_steps: 100 })],
    body: (s) => rangeTestMetric(s[0].hash, 200_000),
    expect: { type: "error", code: "BAD_FRAME", mentions: /more than 100000 values/ },
  },
  {
    name: "range_test state with 50k losses (under body_nodes)",
    setup: [open({ type: "range_test", num_steps: 100 })],
    body: (s) => rangeTestMetric(s[0].hash, 50_000),
    expect: { type: "error", code: "BAD_REQUEST", mentions: /state\.step/ },
  },
  {
    name: "range_test num_steps 1e6",
    body: () => encodeBody(open({ type: "range_test", num_steps: 1_000_000 })),
    expect: { type: "error", code: "SPEC_INVALID", mentions: /range_test_steps/ },
  },
  {
    name: "fractal horizon 2^24",
    body: () => encodeBody(open({ type: "fractal", horizon: 2 ** 24, lambda_min: 0.1, lambda_max: 10 })),
    repeat: 15,
    expect: { type: "error", code: "SPEC_INVALID", mentions: /fractal_horizon/ },
  },
  {
    name: "MultiStepLR of 100k milestones (500 KB)",
    body: () => encodeBody(open({ type: "MultiStepLR", milestones: Array.from({ length: 100_000 }, (_, i) => i * 7 + 1_000_000) })),
    expect: { type: "error", code: "BAD_FRAME", mentions: /more than 100000 values/ },
  },
  {
    name: "MultiStepLR of 5000 milestones",
    body: () => encodeBody(open({ type: "MultiStepLR", milestones: Array.from({ length: 5000 }, (_, i) => i * 7 + 1) })),
    expect: { type: "error", code: "SPEC_INVALID", mentions: /milestones = 1024/ },
  },
  {
    name: "plateau state through msgpackr references",
    setup: [open({ type: "ReduceLROnPlateau" })],
    body: (s) => {
      const big = new Array(1000).fill(1.5);
      const state = { lr: [0.1], best: null, num_bad_epochs: 0, cooldown_counter: 0, last_epoch: 0, a: big, b: big, c: big };
      return new Packr({ structuredClone: true, useRecords: false }).pack({ v: 2, id: 2, type: "metric", hash: s[0].hash, metric: 1, state });
    },
    expect: { type: "error", code: "BAD_FRAME", mentions: /not plain msgpack/ },
  },
  {
    name: "expression nested 10k parentheses",
    body: () => encodeBody(open({ type: "LambdaLR", lr_lambda: `${"(".repeat(500)}epoch${")".repeat(500)}` })),
    expect: { type: "error", code: "SPEC_INVALID", mentions: /expr_depth/ },
  },
  {
    name: "expression chained 400 additions",
    body: () => encodeBody(open({ type: "LambdaLR", lr_lambda: Array(400).fill("1").join("+") })),
    expect: { type: "error", code: "SPEC_INVALID", mentions: /expr_depth/ },
  },
  {
    name: "spec nested 20 maps deep",
    body: () => {
      let deep: unknown = 1;
      for (let i = 0; i < 20; i++) deep = { x: deep };
      return encodeBody(open({ type: "StepLR", step_size: 3, gamma: deep }));
    },
    expect: { type: "error", code: "SPEC_INVALID", mentions: /spec_depth/ },
  },
  {
    name: "bigint in a spec field",
    body: () => encodeBody(open({ type: "StepLR", step_size: 2n ** 62n })),
    expect: { type: "error", code: "SPEC_INVALID", mentions: /2\*\*53/ },
  },
  {
    name: "a schedule tree too costly to build (256 schedulers × 4096 groups)",
    body: () =>
      encodeBody(open({ type: "ChainedScheduler", schedulers: Array.from({ length: 256 }, () => ({ type: "StepLR", step_size: 3 })) }, groups(4096))),
    expect: { type: "error", code: "SPEC_INVALID", mentions: /open_work/ },
  },
  {
    name: "window over max_rows (16 schedulers × 4096 groups × 256 rows)",
    setup: [open({ type: "ChainedScheduler", schedulers: Array.from({ length: 15 }, () => ({ type: "StepLR", step_size: 3 })) }, groups(4096))],
    body: windowAt(0, 256),
    expect: { type: "error", code: "WINDOW_TOO_LARGE", mentions: /window_work/ },
  },
];
