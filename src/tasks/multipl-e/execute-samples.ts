import { resolve } from 'node:path';
import type { HubOptions } from '../../datasets/hub-options.js';
import { executionDetailFields } from '../../sandbox/execution-result.js';
import type { JsLimits } from '../../sandbox/isolated-vm/js-executor.js';
import { multiplEStatusOf } from '../../sandbox/isolated-vm/multipl-e-status.js';
import { writeJsonAtomic } from '../../util/atomic-file.js';
import { DataError } from '../../util/errors.js';
import { Progress } from '../../util/progress.js';
import { readHumanEvalSamples } from '../humaneval/dataset.js';
import { countPasses } from '../humaneval/results.js';
import { scorePassAtK } from '../humaneval/pass-at-k.js';
import type { MultiplELanguage } from './config.js';
import { loadMultiplE, multiplEProgram } from './dataset.js';
import { defaultIsolateConcurrency, runCandidates } from './execute-candidates.js';

export const MULTIPL_E_TASKS = ['multipl-e-js', 'multipl-e-ts'] as const;
export type MultiplETaskName = (typeof MULTIPL_E_TASKS)[number];

export interface MultiplEExecuteOptions {
  task: MultiplETaskName;
  samplesPath: string;
  /** --multipl-e-js / --multipl-e-ts: a local humaneval-<language> file; the hub data set without it. */
  source?: string;
  output?: string;
  timeoutS: number;
  memoryMb: number;
  maxOutputBytes: number;
  concurrency?: number;
  hub: HubOptions;
  signal?: AbortSignal;
}

/**
 * `evalpipe execute --task multipl-e-js|multipl-e-ts`: score completions made by any tool ({"task_id", "completion"}
 * lines, task_id being the problem's `name`) as the task's execute stage does: prompt + completion + "\n" + tests,
 * each in a fresh isolated-vm context (TypeScript through tsc's checks first); pass@k over the problems covered.
 */
export async function executeMultiplESamples(options: MultiplEExecuteOptions): Promise<{ output: string; summary: Record<string, unknown> }> {
  const language: MultiplELanguage = options.task === 'multipl-e-ts' ? 'ts' : 'js';
  const { samples, sha256 } = await readHumanEvalSamples(options.samplesPath, { signal: options.signal });
  const set = await loadMultiplE(language, options.source, { ...options.hub, signal: options.signal });
  const byName = new Map(set.problems.map((problem) => [problem.name, problem]));
  for (const sample of samples) {
    if (!byName.has(sample.task_id)) {
      throw new DataError(`${options.samplesPath} line ${sample.line} names task_id "${sample.task_id}", which is not a humaneval-${language} problem`, {
        hint: `task_id is the problem's "name", e.g. ${[...byName.keys()].slice(0, 2).join(', ')}`,
      });
    }
  }
  const limits: JsLimits = { timeoutMs: options.timeoutS * 1000, memoryMb: options.memoryMb, maxOutputBytes: options.maxOutputBytes };
  const concurrency = options.concurrency ?? defaultIsolateConcurrency();
  const items = samples.map((sample) => ({ sample, program: multiplEProgram(byName.get(sample.task_id)!, sample.completion) }));
  const progress = new Progress(`${options.task} execute`, items.length, 'samples');
  const started = performance.now();
  let executions: Awaited<ReturnType<typeof runCandidates>>;
  try {
    executions = await runCandidates(language, items, {
      limits,
      concurrency,
      signal: options.signal,
      onResult: (_, result) => progress.tick(1, !result.passed),
    });
  } finally {
    progress.finish();
  }
  const seconds = Math.round(performance.now() - started) / 1000;
  const verdicts = executions.map((execution, index) => ({ task_id: samples[index]!.task_id, passed: execution.passed, status: execution.status }));
  const score = scorePassAtK(
    countPasses(
      set.problems.map((problem) => problem.name),
      verdicts,
    ),
  );
  const statuses: Record<string, number> = {};
  for (const execution of executions) statuses[execution.status] = (statuses[execution.status] ?? 0) + 1;
  const subset = { problems: score.problems.length, of: set.problems.length, is_subset: score.problems.length < set.problems.length };
  const output = resolve(options.output ?? `${options.samplesPath}_results.json`);
  const record = {
    schema_version: 1,
    kind: 'evalpipe.execute',
    task: options.task,
    created_at: new Date().toISOString(),
    samples_file: { path: resolve(options.samplesPath), sha256, count: samples.length },
    dataset: set.provenance,
    isolate: {
      runtime: 'isolated-vm',
      concurrency,
      limits: { timeout_ms: limits.timeoutMs, memory_mb: limits.memoryMb, max_output_bytes: limits.maxOutputBytes },
    },
    seconds,
    statuses,
    pass_at_k: score.passAtK,
    pass_at_k_omitted: score.omitted,
    subset,
    problems: score.problems.map((problem) => ({ task_id: problem.taskId, n: problem.n, c: problem.c, ...problem.passAtK })),
    samples: executions.map((execution, index) => ({
      line: samples[index]!.line,
      task_id: samples[index]!.task_id,
      sample_index: samples[index]!.sample_index,
      completion: samples[index]!.completion,
      passed: execution.passed,
      status: execution.status,
      multipl_e_status: multiplEStatusOf(execution),
      ...executionDetailFields(execution),
    })),
  };
  await writeJsonAtomic(output, record);
  return {
    output,
    summary: { output, task: options.task, samples: samples.length, problems: score.problems.length, subset, statuses, pass_at_k: score.passAtK, seconds },
  };
}
