// A user's mistake (bad flag, missing file, malformed config) is a UserError: the CLI prints its
// message on one line and exits with code 2, never a stack trace. Messages name the file or
// function, the field, and what was expected.
export class UserError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UserError";
  }
}

/**
 * A bad value for a field of a library call's options. The message names the field as the caller
 * wrote it (`context: "0" is not an integer >= 1`, `gpus 6 is not a multiple of tp 4`), never a
 * CLI flag; `fields` lists the names it mentions, so a front end can re-word them (the CLI shows
 * `--context`, src/cli/flags.ts withFlagNames).
 */
export class OptionError extends UserError {
  readonly fields: readonly string[];
  constructor(fields: string | readonly string[], message: string) {
    super(message);
    this.name = "OptionError";
    this.fields = typeof fields === "string" ? [fields] : fields;
  }
}

/**
 * The first line of an error's message with control characters and undecodable bytes shown as "?": JSON.parse
 * quotes the text around the error, which for a binary file would put raw bytes on the terminal.
 */
export function errorLine(e: unknown): string {
  return String((e as Error)?.message ?? e).split("\n")[0].replace(/[\u0000-\u001f\u007f-\u009f\ufffd]/g, "?").slice(0, 200);
}
