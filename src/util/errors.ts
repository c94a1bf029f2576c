/**
 * The error base for every failure evalpipe knows how to explain.
 * `message` says what went wrong; `hint` says what the user should do next.
 * The CLI prints known errors as one line (plus the hint) and exits non-zero;
 * anything that is not an EvalpipeError is a bug and prints its stack with --verbose.
 */
export class EvalpipeError extends Error {
  readonly hint: string | undefined;
  /** A stable machine-readable code, e.g. `bad_input`, `engine_dead`. */
  readonly code: string;

  constructor(code: string, message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.hint = options.hint;
    Object.defineProperty(this, 'name', { value: new.target.name, enumerable: false });
  }

  /** One line for the terminal: the message, then what to do. */
  toUserLine(): string {
    return this.hint ? `${this.message} — ${this.hint}` : this.message;
  }
}

/** The user gave a flag, file or value we cannot use. */
export class UsageError extends EvalpipeError {
  constructor(message: string, options: { hint?: string; cause?: unknown } = {}) {
    super('bad_input', message, options);
  }
}

/** A data set could not be found, fetched, read or understood. */
export class DataError extends EvalpipeError {
  constructor(message: string, options: { hint?: string; cause?: unknown } = {}) {
    super('data', message, options);
  }
}

/** The run directory is unreadable, from another schema, or does not match the config. */
export class RunStoreError extends EvalpipeError {
  constructor(message: string, options: { hint?: string; cause?: unknown } = {}) {
    super('run_store', message, options);
  }
}

/** The shell's exit status for a process stopped by a signal: 128 + the signal's number. */
const SIGNAL_EXIT_CODES: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 };

/** The user (Ctrl-C) or the system (SIGTERM) stopped the command; what was finished is on disk. */
export class InterruptedError extends EvalpipeError {
  readonly exitCode: number;

  constructor(
    readonly received: NodeJS.Signals,
    options: { cause?: unknown } = {},
  ) {
    super('interrupted', `stopped by ${received}`, { hint: 'finished work is saved; run the same command again to resume', cause: options.cause });
    this.exitCode = SIGNAL_EXIT_CODES[received] ?? 1;
  }
}

export function isEvalpipeError(error: unknown): error is EvalpipeError {
  return error instanceof EvalpipeError;
}
