/** The clock of the wire vectors (ms since the epoch): `stats` replies carry times, so they need a fixed one. */
export const VECTOR_CLOCK = (): number => 1_767_225_600_000;
