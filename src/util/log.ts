/** Logs and progress go to stderr; stdout is kept for results. */
let verbose = process.env.EVALPIPE_VERBOSE === '1';

export function setVerbose(value: boolean): void {
  verbose = value;
}

export const log = {
  info(message: string): void {
    process.stderr.write(`${message}\n`);
  },
  warn(message: string): void {
    process.stderr.write(`warning: ${message}\n`);
  },
  debug(message: string): void {
    if (verbose) process.stderr.write(`debug: ${message}\n`);
  },
};
