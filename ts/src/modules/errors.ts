/** The module cannot be compiled: the message lists what is wrong, with file:line:col. */
export class CompileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CompileError";
  }
}
