import type { HumanEvalProblem } from '../datasets/humaneval.js';
import { humanEvalProgram } from '../datasets/humaneval.js';
import type { ExecutionResult, ExecutionStatus } from './execution-result.js';
import { knownWrongCompletions } from './known-wrong.js';
import type { SandboxPool } from './sandbox-pool.js';

export interface LimitProbe {
  name: string;
  program: string;
  expected: ExecutionStatus;
}

/** Two programs that must hit the sandbox's limits, so `sandbox check` proves they are enforced. */
export const LIMIT_PROBES: readonly LimitProbe[] = [
  { name: 'infinite loop', program: 'while True:\n    pass\n', expected: 'timeout' },
  { name: '8 GiB allocation', program: 'block = bytearray(8 * 1024 ** 3)\n', expected: 'oom' },
];

export interface SandboxCheckReport {
  ok: boolean;
  image: string;
  canonical: { total: number; passed: number; notPassed: { task_id: string; status: ExecutionStatus; message: string | null }[] };
  knownWrong: { total: number; passed: number; byStatus: Partial<Record<ExecutionStatus, number>>; wronglyPassed: { task_id: string; kind: string }[] };
  probes: { name: string; expected: ExecutionStatus; got: ExecutionStatus; ok: boolean }[];
  sandboxErrors: number;
  executions: number;
  seconds: number;
}

/**
 * Run every canonical solution (all must pass), three known-wrong completions per problem (none may pass) and
 * the limit probes (each must be classified as expected) through the pool.
 */
export async function runSandboxCheck(
  pool: SandboxPool,
  problems: readonly HumanEvalProblem[],
  options: { signal?: AbortSignal; onResult?: (result: ExecutionResult) => void } = {},
): Promise<SandboxCheckReport> {
  const started = performance.now();
  const run = async (program: string): Promise<ExecutionResult> => {
    const result = await pool.execute(program, { signal: options.signal });
    options.onResult?.(result);
    return result;
  };
  const wrong = problems.flatMap((problem) => knownWrongCompletions(problem).map((entry) => ({ problem, ...entry })));
  const [canonical, knownWrong, probes] = await Promise.all([
    Promise.all(problems.map((problem) => run(humanEvalProgram(problem, problem.canonical_solution)))),
    Promise.all(wrong.map((entry) => run(humanEvalProgram(entry.problem, entry.completion)))),
    Promise.all(LIMIT_PROBES.map((probe) => run(probe.program))),
  ]);
  const byStatus: Partial<Record<ExecutionStatus, number>> = {};
  for (const result of knownWrong) byStatus[result.status] = (byStatus[result.status] ?? 0) + 1;
  const report: SandboxCheckReport = {
    ok: false,
    image: pool.image,
    canonical: {
      total: problems.length,
      passed: canonical.filter((result) => result.passed).length,
      notPassed: canonical.flatMap((result, index) =>
        result.passed ? [] : [{ task_id: problems[index]!.task_id, status: result.status, message: result.message }],
      ),
    },
    knownWrong: {
      total: wrong.length,
      passed: knownWrong.filter((result) => result.passed).length,
      byStatus,
      wronglyPassed: knownWrong.flatMap((result, index) => (result.passed ? [{ task_id: wrong[index]!.problem.task_id, kind: wrong[index]!.kind }] : [])),
    },
    probes: LIMIT_PROBES.map((probe, index) => ({
      name: probe.name,
      expected: probe.expected,
      got: probes[index]!.status,
      ok: probes[index]!.status === probe.expected,
    })),
    sandboxErrors: [...canonical, ...knownWrong, ...probes].filter((result) => result.status === 'sandbox_error').length,
    executions: canonical.length + knownWrong.length + probes.length,
    seconds: (performance.now() - started) / 1000,
  };
  report.ok =
    report.canonical.passed === report.canonical.total &&
    report.knownWrong.passed === 0 &&
    report.probes.every((probe) => probe.ok) &&
    report.sandboxErrors === 0;
  return report;
}
