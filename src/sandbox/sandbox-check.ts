import type { HumanEvalProblem } from '../tasks/humaneval/dataset.js';
import { humanEvalIsolatedProgram, humanEvalProgram } from '../tasks/humaneval/dataset.js';
import type { ExecutionResult, ExecutionStatus } from './execution-result.js';
import { isolationCheats, knownWrongCompletions, type KnownWrongCompletion } from '../tasks/humaneval/known-wrong.js';
import type { VerdictMode } from './container-spec.js';
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
  verdicts: VerdictMode;
  canonical: { total: number; passed: number; notPassed: { task_id: string; status: ExecutionStatus; message: string | null }[] };
  knownWrong: { total: number; passed: number; byStatus: Partial<Record<ExecutionStatus, number>>; wronglyPassed: { task_id: string; kind: string }[] };
  /** Isolated mode only: the known-wrong completions whose default verdict was `passed` (the cheats it stops), by kind. */
  passedOnlyTheDefaultWay?: Record<string, number>;
  /** Isolated mode only: problems whose tests cannot run isolated (their default verdicts count). */
  notIsolated?: string[];
  probes: { name: string; expected: ExecutionStatus; got: ExecutionStatus; ok: boolean }[];
  sandboxErrors: number;
  executions: number;
  seconds: number;
}

/** The known-wrong completions a check runs per problem: five, and the four isolation cheats in isolated mode. */
export function checkCompletions(problem: HumanEvalProblem, verdicts: VerdictMode): KnownWrongCompletion[] {
  return [...knownWrongCompletions(problem), ...(verdicts === 'isolated' ? isolationCheats() : [])];
}

/** How many executions a check makes (for progress). */
export function checkExecutionCount(problems: readonly HumanEvalProblem[], verdicts: VerdictMode): number {
  return problems.reduce((total, problem) => total + 1 + checkCompletions(problem, verdicts).length, LIMIT_PROBES.length);
}

/**
 * Run every canonical solution (all must pass), the known-wrong completions of each problem (none may pass) and
 * the limit probes (each must be classified as expected) through the pool. A pool with isolated verdicts runs each
 * candidate both ways and counts the isolated verdict; its check adds the four cheats only that mode stops.
 */
export async function runSandboxCheck(
  pool: SandboxPool,
  problems: readonly HumanEvalProblem[],
  options: { signal?: AbortSignal; onResult?: (result: ExecutionResult) => void } = {},
): Promise<SandboxCheckReport> {
  const started = performance.now();
  const verdicts = pool.verdicts;
  const run = async (program: string, isolated?: ReturnType<typeof humanEvalIsolatedProgram>): Promise<ExecutionResult> => {
    const result = await pool.execute(program, { signal: options.signal, isolated });
    options.onResult?.(result);
    return result;
  };
  const candidate = (problem: HumanEvalProblem, completion: string): Promise<ExecutionResult> =>
    run(humanEvalProgram(problem, completion), verdicts === 'isolated' ? humanEvalIsolatedProgram(problem, completion) : undefined);
  const wrong = problems.flatMap((problem) => checkCompletions(problem, verdicts).map((entry) => ({ problem, ...entry })));
  const [canonical, knownWrong, probes] = await Promise.all([
    Promise.all(problems.map((problem) => candidate(problem, problem.canonical_solution))),
    Promise.all(wrong.map((entry) => candidate(entry.problem, entry.completion))),
    Promise.all(LIMIT_PROBES.map((probe) => run(probe.program))),
  ]);
  const byStatus: Partial<Record<ExecutionStatus, number>> = {};
  for (const result of knownWrong) byStatus[result.status] = (byStatus[result.status] ?? 0) + 1;
  const report: SandboxCheckReport = {
    ok: false,
    image: pool.image,
    verdicts,
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
    ...(verdicts === 'isolated'
      ? {
          passedOnlyTheDefaultWay: knownWrong.reduce<Record<string, number>>((counts, result, index) => {
            if (result.isolation?.default.status === 'passed') counts[wrong[index]!.kind] = (counts[wrong[index]!.kind] ?? 0) + 1;
            return counts;
          }, {}),
          notIsolated: [
            ...new Set(
              [...canonical, ...knownWrong].flatMap((result, index) =>
                result.isolation?.outcome === 'unsupported'
                  ? [(index < canonical.length ? problems[index]! : wrong[index - canonical.length]!.problem).task_id]
                  : [],
              ),
            ),
          ],
        }
      : {}),
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
