// A user's mistake (bad flag, missing file, malformed config) is a UserError: the CLI prints its
// message on one line and exits with code 2, never a stack trace. Messages name the file or
// function, the field, and what was expected.
export class UserError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UserError";
  }
}
