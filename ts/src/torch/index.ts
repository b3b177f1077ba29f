/** torch 2.13 lr_scheduler semantics, simulated step for step (math only, no I/O). */
export { type DirectRows, StepFailure, TorchScheduler, hasDirectRows } from "./base";
export * from "./chainable";
export * from "./cyclic";
export * from "./warm_restarts";
export * from "./composite";
export * from "./plateau";
export * from "./optimizer";
export * from "../core/pymath";
