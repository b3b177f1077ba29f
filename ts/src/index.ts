/** lrbridge as a library: bind specs to param groups and read torch-exact rows. */
export * from "./core/api";
export { bind } from "./bind";
export { canonicalJson, contentHash } from "./core/canonical";
export { validateTorchSpec, TORCH_TYPES, CHAINABLE_TYPES, isTorchType, type CanonicalSpec } from "./torch/validate";
export { buildSchema, type Schema, type TypeSchema } from "./grammar";
export { parseExpr, evaluate, compileFunction, type Expr } from "./core/expr";
