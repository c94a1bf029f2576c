import { resolve } from 'node:path';
import type { HubOptions } from '../../datasets/hub-options.js';
import { SandboxPool } from '../../sandbox/sandbox-pool.js';
import { writeJsonAtomic } from '../../util/atomic-file.js';
import { DataError } from '../../util/errors.js';
import { Progress } from '../../util/progress.js';
import { readHumanEvalSamples } from '../humaneval/dataset.js';
import { loadHumanEvalPlus } from '../humaneval-plus/dataset.js';
import { loadMbppPlus } from '../mbpp-plus/dataset.js';
import { DEFAULT_GT_TIME_LIMIT_FACTOR, DEFAULT_MIN_TIME_LIMIT_S } from './config.js';
import { calibrate, executePlusCandidate, type Calibration } from './execute.js';
import { plusRecord, plusResults, type PlusExecutionRecord } from './task-factory.js';

export const PLUS_TASKS = ['humaneval-plus', 'mbpp-plus'] as const;
export type PlusTaskName = (typeof PLUS_TASKS)[number];

export interface PlusExecuteOptions {
  task: PlusTaskName;
  samplesPath: string;
  /** --humaneval-plus or --mbpp-plus. */
  source?: string;
  /** humaneval-plus: --humaneval (the base tests). */
  baseSource?: string;
  output?: string;
  memoryMb: number;
  concurrency?: number;
  minTimeLimitS?: number;
  gtTimeLimitFactor?: number;
  hub: HubOptions;
  signal?: AbortSignal;
}

/**
 * `evalpipe execute --task humaneval-plus|mbpp-plus`: score samples (evalplus's / human-eval's
 * {"task_id", "completion"} lines) as evalplus's evaluate does: the canonical solutions are timed first, then each
 * sample runs the base and the plus suite; base and plus pass@k are written to the output JSON.
 */
export async function executePlusSamples(options: PlusExecuteOptions): Promise<{ output: string; summary: Record<string, unknown> }> {
  const { samples, sha256 } = await readHumanEvalSamples(options.samplesPath, { signal: options.signal });
  const loadOptions = { ...options.hub, signal: options.signal };
  const set =
    options.task === 'humaneval-plus'
      ? await loadHumanEvalPlus({ source: options.source, baseSource: options.baseSource }, loadOptions)
      : await loadMbppPlus({ source: options.source }, loadOptions);
  const byId = new Map(set.problems.map((problem) => [problem.task_id, problem]));
  for (const sample of samples) {
    if (!byId.has(sample.task_id)) {
      throw new DataError(`${options.samplesPath} line ${sample.line} names task_id "${sample.task_id}", which is not a ${options.task} problem`, {
        hint: `task ids look like ${[...byId.keys()].slice(0, 3).join(', ')}`,
      });
    }
  }
  const minTimeLimitS = options.minTimeLimitS ?? DEFAULT_MIN_TIME_LIMIT_S;
  const gtTimeLimitFactor = options.gtTimeLimitFactor ?? DEFAULT_GT_TIME_LIMIT_FACTOR;
  const pool = await SandboxPool.open({ memoryMb: options.memoryMb, concurrency: options.concurrency, signal: options.signal });
  const started = performance.now();
  const calibrations = new Map<string, Calibration>();
  const records: PlusExecutionRecord[] = [];
  try {
    const used = [...new Set(samples.map((sample) => sample.task_id))].map((taskId) => byId.get(taskId)!);
    await Promise.all(used.map(async (problem) => calibrations.set(problem.task_id, await calibrate(pool, problem, options.signal))));
    const progress = new Progress(`${options.task} execute`, samples.length, 'samples');
    try {
      const verdicts = await Promise.all(
        samples.map(async (sample) => {
          const problem = byId.get(sample.task_id)!;
          const verdict = await executePlusCandidate(pool, problem, calibrations.get(problem.task_id)!, sample.completion, {
            minTimeLimitS,
            gtTimeLimitFactor,
            signal: options.signal,
          });
          progress.tick(1, !verdict.passed);
          return plusRecord(sample, verdict);
        }),
      );
      records.push(...verdicts);
    } finally {
      progress.finish();
    }
  } finally {
    await pool.close();
  }
  const covered = set.problems.filter((problem) => calibrations.has(problem.task_id)).map((problem) => problem.task_id);
  const counted = records.filter((record) => (record.base_status as string) !== 'sandbox_error' && (record.plus_status as string) !== 'sandbox_error');
  const n = Math.min(...covered.map((taskId) => counted.filter((record) => record.task_id === taskId).length));
  const results = plusResults(covered, Number.isFinite(n) ? n : 0, counted);
  const output = resolve(options.output ?? `${options.samplesPath}_results.json`);
  const canonicalFailures = [...calibrations.values()]
    .filter((each) => each.canonical_failure)
    .map((each) => ({ task_id: each.task_id, failure: each.canonical_failure }));
  const record = {
    schema_version: 1,
    kind: 'evalpipe.execute',
    task: options.task,
    created_at: new Date().toISOString(),
    samples_file: { path: resolve(options.samplesPath), sha256, count: samples.length },
    datasets: set.provenance,
    sandbox: { image: pool.image, concurrency: pool.concurrency, limits: pool.limits },
    time_limits: { min_time_limit_s: minTimeLimitS, gt_time_limit_factor: gtTimeLimitFactor, canonical_failures: canonicalFailures },
    seconds: Math.round(performance.now() - started) / 1000,
    subset: { problems: covered.length, of: set.problems.length, is_subset: covered.length < set.problems.length },
    base: results.base,
    plus: results.plus,
    samples: records.map((each, index) => ({ line: samples[index]!.line, ...each })),
  };
  await writeJsonAtomic(output, record);
  return {
    output,
    summary: {
      output,
      task: options.task,
      samples: samples.length,
      problems: covered.length,
      base: results.base.pass_at_k,
      plus: results.plus.pass_at_k,
      seconds: record.seconds,
    },
  };
}
