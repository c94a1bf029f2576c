import type { Options } from 'yargs';
import { shardUnits } from '../../pipeline/shard.js';
import { stageIncomplete, type RunContext, type Stage } from '../../pipeline/stage.js';
import type { DatasetProvenance } from '../../datasets/load.js';
import type { RunData } from '../../pipeline/store/run-reader.js';
import { recordKind } from '../../pipeline/store/record-kind.js';
import type { EstimateJson } from '../../pipeline/statistics.js';
import { SandboxPool } from '../../sandbox/sandbox-pool.js';
import { EvalpipeError } from '../../util/errors.js';
import { log } from '../../util/log.js';
import { Progress } from '../../util/progress.js';
import type { Flags } from '../../util/option-values.js';
import type { HubOptions } from '../../datasets/hub-options.js';
import { unrunRecord } from '../humaneval/execute-stage.js';
import { DEFAULT_GENERATE_BATCH_SAMPLES, runGenerateStage } from '../humaneval/generate-stage.js';
import { executionKey, generationKey, type ExecutionRecord, type GenerationRecord } from '../humaneval/records.js';
import { humanEvalResults, type HumanEvalResults } from '../humaneval/results.js';
import { plusConfigFrom, type PlusConfig } from './config.js';
import { calibrate, executePlusCandidate, type Calibration, type PlusVerdict } from './execute.js';
import type { PlusProblem } from './program.js';

/** A loaded evalplus-style data set. */
export interface PlusSet {
  problems: PlusProblem[];
  /** Each source it was read from, by the manifest's data set name (humaneval-plus also reads HumanEval's tests). */
  provenance: Record<string, DatasetProvenance>;
}

/** One candidate's record: humaneval's execution record (status/passed: the plus verdict) and both suites'. */
export interface PlusExecutionRecord extends ExecutionRecord {
  base_status: ExecutionRecord['status'];
  base_passed: boolean;
  base_exception_type: string | null;
  plus_status: ExecutionRecord['status'];
  plus_passed: boolean;
  plus_exception_type: string | null;
}

export interface CalibrationRecord extends Calibration {
  key: string;
}

/** results.json `<task>`: pass@k on the base tests and on base + plus (evalplus's "Base" and "Base + Extra"). */
export interface PlusResults {
  base: HumanEvalResults;
  plus: HumanEvalResults;
  time_limits: { min_time_limit_s: number; gt_time_limit_factor: number; canonical_failures: { task_id: string; failure: string }[] };
  subset: { problems: number; of: number; limit: number | null; is_subset: boolean };
}

export interface PlusTaskSpec<Name extends string> {
  name: Name;
  description: string;
  options: Readonly<Record<string, Options>>;
  sourceFlag: string;
  defaultStop: readonly string[];
  /** The flag of a second source the task reads (humaneval-plus: --humaneval, for the base tests). */
  baseSourceFlag?: string;
  /** Load the problems from `config.source` (a local file) or the hub. */
  load(config: PlusConfig, options: HubOptions & { signal?: AbortSignal }): Promise<PlusSet>;
}

/** The pieces of an evalplus-style task: config, stages (generate, calibrate, execute) and score. */
export function plusTaskParts<Name extends string>(spec: PlusTaskSpec<Name>) {
  const name = spec.name;
  const configOf = (context: { config: unknown }): PlusConfig => (context.config as Record<string, PlusConfig>)[name]!;
  const GENERATE = recordKind<GenerationRecord>(`${name}-generate`, {
    task_id: 'string',
    sample_index: 'integer',
    prompt_used: 'string',
    completion: 'string',
  });
  const CALIBRATE = recordKind<CalibrationRecord>(`${name}-calibrate`, { task_id: 'string', base_times: 'array', plus_times: 'array' });
  const EXECUTE = recordKind<PlusExecutionRecord>(`${name}-execute`, {
    task_id: 'string',
    sample_index: 'integer',
    status: 'string',
    passed: 'boolean',
    base_passed: 'boolean',
    plus_passed: 'boolean',
  });
  const problemsKey = `${name}:problems`;
  const problemsOf = (context: RunContext): Promise<PlusProblem[]> =>
    context.once(problemsKey, async () => {
      const config = configOf(context);
      const set = await spec.load(config, { ...context.hub, signal: context.signal });
      for (const [dataset, provenance] of Object.entries(set.provenance)) await context.store.recordDataset(dataset, provenance);
      const problems = config.limit === undefined ? set.problems : set.problems.slice(0, config.limit);
      return shardUnits(context.settings.shard, name, problems, (problem) => problem.task_id); // --shard i/N: this machine's share
    });
  const samplesInRun = (run: RunData): number | null => {
    const { limit, n } = (run.manifest.config as unknown as Record<string, PlusConfig>)[name]!;
    const recorded = run.manifest.datasets[name];
    const problems = recorded ? (limit === undefined ? recorded.rowCount : Math.min(limit, recorded.rowCount)) : (limit ?? null);
    return problems === null ? null : problems * n;
  };
  const keys = (problems: readonly PlusProblem[], n: number, key: (taskId: string, index: number) => string) =>
    problems.flatMap((problem) => Array.from({ length: n }, (_, index) => key(problem.task_id, index)));
  const calibrationKey = (taskId: string) => `cal:${taskId}`;

  const generateStage: Stage = {
    name: `${name}-generate`,
    needsEngine: true,
    async pending(context) {
      const records = await context.store.records(GENERATE);
      return keys(await problemsOf(context), configOf(context).n, generationKey).filter((key) => !records.has(key)).length;
    },
    async run(context) {
      await runGenerateStage({
        run: context.store,
        engine: () => context.engine(),
        problems: await problemsOf(context),
        config: configOf(context),
        seed: context.config.seed,
        batchSamples: context.settings.batchSize,
        signal: context.signal,
        records: GENERATE,
        label: `${name} generate`,
      });
    },
    async progress(run) {
      return { done: (await run.records(GENERATE)).size, total: samplesInRun(run), unit: 'samples' };
    },
  };

  const calibrateStage: Stage = {
    name: `${name}-calibrate`,
    needsEngine: false,
    async pending(context) {
      const records = await context.store.records(CALIBRATE);
      return (await problemsOf(context)).filter((problem) => !records.has(calibrationKey(problem.task_id))).length;
    },
    async run(context) {
      const problems = await problemsOf(context);
      const records = await context.store.records(CALIBRATE);
      const todo = problems.filter((problem) => !records.has(calibrationKey(problem.task_id)));
      if (todo.length === 0) return;
      const config = configOf(context);
      const pool = await SandboxPool.open({ memoryMb: config.memoryMb, concurrency: context.settings.concurrency, signal: context.signal });
      const progress = new Progress(`${name} calibrate`, problems.length, 'problems', process.stderr, problems.length - todo.length);
      try {
        await Promise.all(
          todo.map(async (problem) => {
            const calibration = await calibrate(pool, problem, context.signal);
            if (calibration.canonical_failure) {
              log.warn(`${name}: the canonical solution of ${problem.task_id} fails in the sandbox (${calibration.canonical_failure})`);
            }
            await records.append({ key: calibrationKey(problem.task_id), ...calibration });
            progress.tick(1, calibration.canonical_failure !== null);
          }),
        );
      } finally {
        progress.finish();
        await pool.close();
      }
    },
    async progress(run) {
      const total = samplesInRun(run);
      const { n } = (run.manifest.config as unknown as Record<string, PlusConfig>)[name]!;
      return { done: (await run.records(CALIBRATE)).size, total: total === null ? null : total / n, unit: 'problems' };
    },
  };

  const executeStage: Stage = {
    name: `${name}-execute`,
    needsEngine: false,
    async pending(context) {
      const records = await context.store.records(EXECUTE);
      return keys(await problemsOf(context), configOf(context).n, executionKey).filter((key) => !records.has(key)).length;
    },
    async run(context) {
      const config = configOf(context);
      const problems = await problemsOf(context);
      const generated = await context.store.records(GENERATE);
      const calibrations = await context.store.records(CALIBRATE);
      const executed = await context.store.records(EXECUTE);
      const todo: { problem: PlusProblem; generation: GenerationRecord; calibration: Calibration }[] = [];
      for (const problem of problems) {
        const calibration = calibrations.get(calibrationKey(problem.task_id));
        if (!calibration) throw stageIncomplete(`${name} calibration`, calibrations.size, problems.length, `${name}-calibrate`);
        for (let index = 0; index < config.n; index += 1) {
          if (executed.has(executionKey(problem.task_id, index))) continue;
          const generation = generated.get(generationKey(problem.task_id, index));
          if (!generation) throw stageIncomplete(`${name} generation`, generated.size, problems.length * config.n, `${name}-generate`);
          if (generation.finish_reason === 'prompt_too_long' || generation.finish_reason === 'engine_error') {
            const unrun = unrunRecord(generation);
            await executed.append({
              ...unrun,
              base_status: unrun.status,
              base_passed: false,
              base_exception_type: null,
              plus_status: unrun.status,
              plus_passed: false,
              plus_exception_type: null,
            });
            continue;
          }
          todo.push({ problem, generation, calibration });
        }
      }
      if (todo.length === 0) return;
      const pool = await SandboxPool.open({ memoryMb: config.memoryMb, concurrency: context.settings.concurrency, signal: context.signal });
      const total = problems.length * config.n;
      const progress = new Progress(`${name} execute`, total, 'candidates', process.stderr, total - todo.length);
      let infrastructureFailures = 0;
      try {
        await Promise.all(
          todo.map(async ({ problem, generation, calibration }) => {
            const verdict = await executePlusCandidate(pool, problem, calibration, generation.completion, {
              minTimeLimitS: config.minTimeLimitS,
              gtTimeLimitFactor: config.gtTimeLimitFactor,
              prompt: generation.prompt_used,
              signal: context.signal,
            });
            if (verdict.base.status === 'sandbox_error' || verdict.plus.status === 'sandbox_error') {
              infrastructureFailures += 1;
              progress.tick(1, true);
              return;
            }
            await executed.append(plusRecord(generation, verdict));
            progress.tick(1, !verdict.passed);
          }),
        );
      } finally {
        progress.finish();
        await pool.close();
      }
      if (infrastructureFailures > 0) {
        throw new EvalpipeError('sandbox_error', `${name} execute: ${infrastructureFailures} candidates could not be run because the sandbox failed`, {
          hint: 'check the Docker daemon (`docker info`), then run the same command again: only those candidates run again',
        });
      }
    },
    async progress(run) {
      const records = await run.records(EXECUTE);
      const detail: Record<string, number> = {};
      for (const record of records.values()) detail[record.status] = (detail[record.status] ?? 0) + 1;
      return { done: records.size, total: samplesInRun(run), unit: 'samples', detail };
    },
  };

  async function score(context: RunContext): Promise<PlusResults> {
    const problems = await problemsOf(context);
    const config = configOf(context);
    const executed = await context.store.records(EXECUTE);
    const calibrations = await context.store.records(CALIBRATE);
    const records: PlusExecutionRecord[] = [];
    for (const key of keys(problems, config.n, executionKey)) {
      const record = executed.get(key);
      if (!record) throw stageIncomplete(`${name} execution`, executed.size, problems.length * config.n, `${name}-generate,${name}-calibrate,${name}-execute`);
      records.push(record);
    }
    const results = plusResults(
      problems.map((problem) => problem.task_id),
      config.n,
      records,
    );
    const canonicalFailures = problems.flatMap((problem) => {
      const failure = calibrations.get(calibrationKey(problem.task_id))?.canonical_failure;
      return failure ? [{ task_id: problem.task_id, failure }] : [];
    });
    const available = context.store.manifest.datasets[name]?.rowCount ?? problems.length;
    const subset = { problems: problems.length, of: available, limit: config.limit ?? null, is_subset: problems.length < available };
    if (subset.is_subset) log.warn(`${name}: pass@k over the first ${subset.problems} of ${subset.of} problems (--limit): a subset`);
    return {
      ...results,
      time_limits: { min_time_limit_s: config.minTimeLimitS, gt_time_limit_factor: config.gtTimeLimitFactor, canonical_failures: canonicalFailures },
      subset,
    };
  }

  return {
    name,
    version: 1,
    description: spec.description,
    options: spec.options,
    configFrom: (flags: Flags): PlusConfig => plusConfigFrom(flags, spec.sourceFlag, spec.defaultStop, spec.baseSourceFlag),
    stages: [generateStage, calibrateStage, executeStage] as readonly Stage[],
    score,
    headline: (section: PlusResults): Record<string, EstimateJson> => ({
      ...section.plus.estimates,
      ...Object.fromEntries(Object.entries(section.base.estimates).map(([k, value]) => [`base ${k}`, value])),
    }),
    records: { generate: GENERATE, calibrate: CALIBRATE, execute: EXECUTE },
  };
}

/** The record of a candidate's two verdicts. */
export function plusRecord(generation: Pick<GenerationRecord, 'task_id' | 'sample_index'>, verdict: PlusVerdict): PlusExecutionRecord {
  const counted = verdict.counted;
  return {
    key: executionKey(generation.task_id, generation.sample_index),
    task_id: generation.task_id,
    sample_index: generation.sample_index,
    status: verdict.passed ? 'passed' : (counted.status as ExecutionRecord['status']) === 'passed' ? 'failed' : (counted.status as ExecutionRecord['status']),
    passed: verdict.passed,
    exception_type: counted.exceptionType,
    message: counted.message,
    duration_ms: verdict.base.durationMs + verdict.plus.durationMs,
    stdout: counted.stdout,
    stderr: counted.stderr,
    attempts: Math.max(verdict.base.attempts, verdict.plus.attempts),
    base_status: verdict.base.status as ExecutionRecord['status'],
    base_passed: verdict.base.status === 'passed',
    base_exception_type: verdict.base.exceptionType,
    plus_status: verdict.plus.status as ExecutionRecord['status'],
    plus_passed: verdict.plus.status === 'passed',
    plus_exception_type: verdict.plus.exceptionType,
  };
}

/** Base and plus sections in humaneval's pass@k shape: base counts the base suite's verdict, plus both suites'. */
export function plusResults(taskIds: readonly string[], n: number, records: readonly PlusExecutionRecord[]): Pick<PlusResults, 'base' | 'plus'> {
  const base = records.map((record) => ({
    ...record,
    status: record.base_status,
    passed: record.base_passed,
    exception_type: record.base_exception_type,
  }));
  return { base: humanEvalResults(taskIds, n, base), plus: humanEvalResults(taskIds, n, records) };
}
