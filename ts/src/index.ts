/** lrbridge as a library: bind specs to param groups and read torch-exact rows. */
export * from "./spec/api";
export { bind } from "./spec/bind";
export { canonicalJson, contentHash } from "./spec/canonical";
export { validateTorchSpec, TORCH_TYPES, CHAINABLE_TYPES, isTorchType, type CanonicalSpec } from "./spec/validate";
export { parseExpr, evaluate, compileFunction, type Expr } from "./spec/expr";
