import type { ExecutionResult } from '../../sandbox/execution-result.js';
import type { SandboxPool } from '../../sandbox/sandbox-pool.js';
import { PER_TEST_TIMEOUT, parseTimes, plusProgram, suiteTimeoutMs, timeLimits, type PlusProblem } from './program.js';

/** What running the canonical solution gave: per-call seconds for each suite, or why it failed. */
export interface Calibration {
  task_id: string;
  base_times: number[];
  plus_times: number[];
  /** null when the canonical solution passed both suites; else the failure (its limits fall back to the minimum). */
  canonical_failure: string | null;
}

/** Seconds a calibration run may take (evalplus's trusted_exec has no limit; ours must have one). */
export const CALIBRATION_TIMEOUT_MS = 120_000;
const CALIBRATION_OUTPUT_BYTES = 4 * 1024 * 1024;

/** Run the canonical solution of `problem` on both suites in the sandbox, timing each test call. */
export async function calibrate(pool: SandboxPool, problem: PlusProblem, signal?: AbortSignal): Promise<Calibration> {
  const failures: string[] = [];
  const times: Record<'base' | 'plus', number[]> = { base: [], plus: [] };
  for (const suite of ['base', 'plus'] as const) {
    const result = await pool.execute(plusProgram(problem, problem.canonical_solution, suite, null), {
      signal,
      timeoutMs: CALIBRATION_TIMEOUT_MS,
      maxOutputBytes: CALIBRATION_OUTPUT_BYTES,
    });
    const parsed = parseTimes(result.stdout);
    if (result.status !== 'passed' || parsed === null) {
      failures.push(`${suite}: ${result.status}${result.exceptionType ? ` ${result.exceptionType}` : ''}${result.message ? `: ${result.message}` : ''}`);
    }
    times[suite] = parsed ?? [];
  }
  return { task_id: problem.task_id, base_times: times.base, plus_times: times.plus, canonical_failure: failures.length > 0 ? failures.join('; ') : null };
}

/** One suite's verdict of a candidate, in evalplus's words where they differ (a per-test limit is `failed`). */
export interface SuiteVerdict {
  status: ExecutionResult['status'];
  exceptionType: string | null;
  message: string | null;
  durationMs: number;
  stdout: string;
  stderr: string;
  attempts: number;
}

export interface PlusVerdict {
  base: SuiteVerdict;
  plus: SuiteVerdict;
  /** evalplus's "base + extra" verdict: passed only when both suites passed. */
  passed: boolean;
  /** The verdict counted for plus: the base one when base failed, else the plus one. */
  counted: SuiteVerdict;
}

function suiteVerdict(result: ExecutionResult): SuiteVerdict {
  return {
    status: result.status,
    exceptionType: result.exceptionType,
    message: result.message,
    durationMs: result.durationMs,
    stdout: result.stdout,
    stderr: result.stderr,
    attempts: result.attempts,
  };
}

/** Whether a verdict says a test ran past its own limit (evalplus: a failure of that test). */
export function perTestTimeout(verdict: Pick<SuiteVerdict, 'exceptionType'>): boolean {
  return verdict.exceptionType === PER_TEST_TIMEOUT;
}

/**
 * Run one candidate against both suites, as evalplus's check_correctness does (base, then plus, both always run),
 * each under per-test limits from the calibration and the whole-suite timeout min(60, Σ limits) + 1 s.
 */
export async function executePlusCandidate(
  pool: SandboxPool,
  problem: PlusProblem,
  calibration: Calibration,
  completion: string,
  options: { minTimeLimitS: number; gtTimeLimitFactor: number; prompt?: string; signal?: AbortSignal },
): Promise<PlusVerdict> {
  const run = async (suite: 'base' | 'plus'): Promise<SuiteVerdict> => {
    const limits = timeLimits(suite === 'base' ? calibration.base_times : calibration.plus_times, options.minTimeLimitS, options.gtTimeLimitFactor);
    const result = await pool.execute(plusProgram(problem, completion, suite, limits.length > 0 ? limits : [options.minTimeLimitS], options.prompt), {
      signal: options.signal,
      timeoutMs: suiteTimeoutMs(limits, options.minTimeLimitS),
    });
    return suiteVerdict(result);
  };
  const [base, plus] = await Promise.all([run('base'), run('plus')]);
  const passed = base.status === 'passed' && plus.status === 'passed';
  return { base, plus, passed, counted: base.status !== 'passed' ? base : plus };
}
