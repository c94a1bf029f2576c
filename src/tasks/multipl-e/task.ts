import { shardUnits } from '../../pipeline/shard.js';
import { stageIncomplete, type RunContext, type Stage } from '../../pipeline/stage.js';
import type { RunData } from '../../pipeline/store/run-reader.js';
import { log } from '../../util/log.js';
import { Progress } from '../../util/progress.js';
import { unrunRecord } from '../humaneval/execute-stage.js';
import { DEFAULT_GENERATE_BATCH_SAMPLES, runGenerateStage } from '../humaneval/generate-stage.js';
import { executionKey, generationKey, type ExecutionRecord } from '../humaneval/records.js';
import { humanEvalResults, type HumanEvalResults } from '../humaneval/results.js';
import { MULTIPL_E_OUTPUT_BYTES, type MultiplEConfig, type MultiplELanguage } from './config.js';
import { loadMultiplE, multiplEProgram, type MultiplEProblem } from './dataset.js';
import { runCandidates } from './execute-candidates.js';
import { multiplEExecutionRecords, multiplEGenerationRecords, multiplEStageNames } from './records.js';

/** results.json's section of a MultiPL-E task: HumanEval's shape (pass@k, per problem, statuses), plus the subset. */
export type MultiplEResults = HumanEvalResults & { subset: { problems: number; of: number; limit: number | null; is_subset: boolean } };

/** What a language's task reads from the run context. */
export interface MultiplETaskParts {
  language: MultiplELanguage;
  config(context: RunContext | RunData['manifest']): MultiplEConfig;
}

const datasetName = (language: MultiplELanguage) => `multipl-e-${language}`;

function problemsOf(parts: MultiplETaskParts, context: RunContext): Promise<MultiplEProblem[]> {
  return context.once(`multipl-e-${parts.language}:problems`, async () => {
    const config = parts.config(context);
    const set = await loadMultiplE(parts.language, config.source, { signal: context.signal, ...context.hub });
    await context.store.recordDataset(datasetName(parts.language), set.provenance);
    const differing = set.problems.find((problem) => problem.stop_tokens.some((token) => !config.stop.includes(token)));
    if (differing) log.warn(`multipl-e-${parts.language}: ${differing.name}'s stop_tokens ${JSON.stringify(differing.stop_tokens)} differ from ours`);
    const problems = config.limit === undefined ? set.problems : set.problems.slice(0, config.limit);
    // --shard i/N: this machine's share of the problems (each problem's n samples, generated and executed, stay together)
    return shardUnits(context.settings.shard, datasetName(parts.language), problems, (problem) => problem.name);
  });
}

function keys(problems: readonly MultiplEProblem[], n: number, key: (taskId: string, index: number) => string): string[] {
  return problems.flatMap((problem) => Array.from({ length: n }, (_, index) => key(problem.name, index)));
}

function samplesInRun(parts: MultiplETaskParts, run: RunData): number | null {
  const { limit, n } = parts.config(run.manifest);
  const recorded = run.manifest.datasets[datasetName(parts.language)];
  const problems = recorded ? (limit === undefined ? recorded.rowCount : Math.min(limit, recorded.rowCount)) : (limit ?? null);
  return problems === null ? null : problems * n;
}

/**
 * The stages and score of one MultiPL-E language: generation through HumanEval's generate stage (its own record
 * file), execution of prompt + completion + "\n" + tests in a fresh isolated-vm context per candidate, and
 * HumanEval's pass@k over the records.
 */
export function multiplEParts(parts: MultiplETaskParts) {
  const { language } = parts;
  const names = multiplEStageNames(language);
  const GENERATED = multiplEGenerationRecords(language);
  const EXECUTED = multiplEExecutionRecords(language);

  const generate: Stage = {
    name: names.generate,
    needsEngine: true,
    async pending(context) {
      const records = await context.store.records(GENERATED);
      return keys(await problemsOf(parts, context), parts.config(context).n, generationKey).filter((key) => !records.has(key)).length;
    },
    async run(context) {
      const problems = await problemsOf(parts, context);
      await runGenerateStage({
        run: context.store,
        engine: () => context.engine(),
        problems: problems.map((problem) => ({ task_id: problem.name, prompt: problem.prompt })),
        config: parts.config(context),
        seed: context.config.seed,
        batchSamples: context.settings.batchSize,
        signal: context.signal,
        records: GENERATED,
        label: names.generate,
      });
    },
    async progress(run) {
      return { done: (await run.records(GENERATED)).size, total: samplesInRun(parts, run), unit: 'samples' };
    },
  };

  const execute: Stage = {
    name: names.execute,
    needsEngine: false,
    async pending(context) {
      const records = await context.store.records(EXECUTED);
      return keys(await problemsOf(parts, context), parts.config(context).n, executionKey).filter((key) => !records.has(key)).length;
    },
    async run(context) {
      const config = parts.config(context);
      const ordered = await problemsOf(parts, context);
      const problems = new Map(ordered.map((problem) => [problem.name, problem]));
      const generations = await context.store.records(GENERATED);
      const executions = await context.store.records(EXECUTED);
      const todo = ordered.flatMap((problem) =>
        Array.from({ length: config.n }, (_, index) => generations.get(generationKey(problem.name, index))).filter(
          (record): record is NonNullable<typeof record> => record !== undefined && !executions.has(executionKey(record.task_id, record.sample_index)),
        ),
      );
      const progress = new Progress(names.execute, todo.length, 'samples');
      let sandboxErrors = 0;
      const runnable = [];
      for (const generation of todo) {
        if (generation.finish_reason === 'prompt_too_long' || generation.finish_reason === 'engine_error') {
          await executions.append(unrunRecord(generation));
          progress.tick(1, true);
        } else {
          runnable.push({ generation, program: multiplEProgram(problems.get(generation.task_id)!, generation.completion, generation.prompt_used) });
        }
      }
      await runCandidates(language, runnable, {
        limits: { timeoutMs: config.timeoutS * 1000, memoryMb: config.memoryMb, maxOutputBytes: MULTIPL_E_OUTPUT_BYTES },
        concurrency: context.settings.concurrency,
        signal: context.signal,
        onResult: async ({ generation }, result) => {
          if (result.status === 'sandbox_error') {
            sandboxErrors += 1;
            return;
          }
          const record: ExecutionRecord = {
            key: executionKey(generation.task_id, generation.sample_index),
            task_id: generation.task_id,
            sample_index: generation.sample_index,
            status: result.status,
            passed: result.passed,
            exception_type: result.exceptionType,
            message: result.message,
            duration_ms: result.durationMs,
            stdout: result.stdout,
            stderr: result.stderr,
            attempts: 1,
          };
          await executions.append(record);
          progress.tick(1, !result.passed);
        },
      });
      progress.finish();
      if (sandboxErrors > 0) log.warn(`${names.execute}: ${sandboxErrors} samples hit isolate errors; they get no record and run again next time`);
    },
    async progress(run) {
      const records = await run.records(EXECUTED);
      const detail: Record<string, number> = {};
      for (const record of records.values()) detail[record.status] = (detail[record.status] ?? 0) + 1;
      return { done: records.size, total: samplesInRun(parts, run), unit: 'samples', detail };
    },
  };

  async function score(context: RunContext): Promise<MultiplEResults> {
    const problems = await problemsOf(parts, context);
    const { n, limit } = parts.config(context);
    const executed = await context.store.records(EXECUTED);
    const records: ExecutionRecord[] = [];
    for (const key of keys(problems, n, executionKey)) {
      const record = executed.get(key);
      if (!record) throw stageIncomplete(`MultiPL-E ${language} execution`, executed.size, problems.length * n, `${names.generate},${names.execute}`);
      records.push(record);
    }
    const results = humanEvalResults(
      problems.map((problem) => problem.name),
      n,
      records,
    );
    const available = context.store.manifest.datasets[datasetName(language)]?.rowCount ?? problems.length;
    const subset = { problems: problems.length, of: available, limit: limit ?? null, is_subset: problems.length < available };
    if (subset.is_subset) log.warn(`multipl-e-${language}: pass@k over the first ${subset.problems} of ${subset.of} problems (--limit): a subset`);
    return { ...results, subset };
  }

  return { stages: [generate, execute] as const, score };
}
