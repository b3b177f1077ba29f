/**
 * bind(spec, groups): the one entry point from a spec to a Bound. Torch class
 * names go to the torch family (torch/), every other known `type` to the
 * library family (library/).
 */
import type { Bound, GroupInit } from "./core/api";
import { bindTorch } from "./torch/bind";
import { isTorchType } from "./torch/validate";
import { bindGeneric, isGenericType } from "./library/bind";
import "./modules/spec"; // registers the `module` spec type

export function bind(spec: unknown, groups: GroupInit[], lastEpoch = -1): Bound {
  const type = spec !== null && typeof spec === "object" ? (spec as { type?: unknown }).type : undefined;
  if (typeof type === "string" && !isTorchType(type) && isGenericType(type)) {
    // Library schedules scale the lr the optimizer started from.
    return bindGeneric(spec, groups.map((g) => ({ ...g, lr: g.initial_lr ?? g.lr })));
  }
  return bindTorch(spec, groups, lastEpoch);
}
