/** Heartbeats for the live-view tests: one running run, with what a test changes. */
import type { HeartbeatRequest } from "../src/live/heartbeat";

export const beat = (over: Partial<HeartbeatRequest> = {}): HeartbeatRequest => ({
  type: "heartbeat",
  run: { id: "r1", name: "run one", host: "h", pid: 1 },
  hash: "a".repeat(64),
  spec_hash: "b".repeat(64),
  step: 10,
  lr: [0.1],
  momentum: null,
  total: 100,
  state: "running",
  ...over,
});
