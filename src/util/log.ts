import { AsyncLocalStorage } from 'node:async_hooks';

/** Logs and progress go to stderr; stdout is kept for results. */
let verbose = process.env.EVALPIPE_VERBOSE === '1';

/** The prefix of every log line written inside `withLogPrefix` (a sweep's side-by-side runs name their combination). */
const prefixes = new AsyncLocalStorage<string>();

/** Run `work` with every log line (and progress label) it writes prefixed, e.g. `[bf16 sdpa] `. */
export function withLogPrefix<T>(prefix: string, work: () => Promise<T>): Promise<T> {
  return prefixes.run(prefix, work);
}

/** The prefix of the current async context ('' outside `withLogPrefix`). */
export function logPrefix(): string {
  return prefixes.getStore() ?? '';
}

export function setVerbose(value: boolean): void {
  verbose = value;
}

export const log = {
  info(message: string): void {
    process.stderr.write(`${logPrefix()}${message}\n`);
  },
  warn(message: string): void {
    process.stderr.write(`${logPrefix()}warning: ${message}\n`);
  },
  debug(message: string): void {
    if (verbose) process.stderr.write(`${logPrefix()}debug: ${message}\n`);
  },
};
