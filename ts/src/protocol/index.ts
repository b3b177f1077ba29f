/** Protocol v1: message shapes, validation, msgpack codec, error codes (proto/PROTOCOL.md). */
export * from "./codec";
export * from "./errors";
export * from "./jsonable";
export * from "./messages";
