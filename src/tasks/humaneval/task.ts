import { stageIncomplete, type RunContext, type Stage } from '../../pipeline/stage.js';
import { shardUnits } from '../../pipeline/shard.js';
import type { RunData } from '../../pipeline/store/run-reader.js';
import { log } from '../../util/log.js';
import { defineTask } from '../task.js';
import { HUMANEVAL_OPTIONS, humanEvalConfigFrom } from './config.js';
import { loadHumanEval, type HumanEvalProblem } from './dataset.js';
import { runExecuteStage } from './execute-stage.js';
import { DEFAULT_GENERATE_BATCH_SAMPLES, runGenerateStage } from './generate-stage.js';
import { EXECUTION_RECORDS, GENERATION_RECORDS, executionKey, generationKey, type ExecutionRecord } from './records.js';
import { humanEvalResults, type HumanEvalResults } from './results.js';

/** The manifest's name for the problems' provenance. */
const HUMANEVAL_DATASET = 'humaneval';

/** The run context's key for the loaded problems (shared by generate, execute and score). */
export const HUMANEVAL_PROBLEMS = 'humaneval:problems';

/** The problems (the first --limit), loaded once per run; their provenance goes into the manifest. */
function humanEvalProblems(context: RunContext): Promise<HumanEvalProblem[]> {
  return context.once(HUMANEVAL_PROBLEMS, async () => {
    const { humaneval } = context.config;
    const set = await loadHumanEval(humaneval.source, { signal: context.signal, ...context.hub });
    await context.store.recordDataset(HUMANEVAL_DATASET, set.provenance);
    const problems = humaneval.limit === undefined ? set.problems : set.problems.slice(0, humaneval.limit);
    // --shard i/N: this machine's share of the problems (each problem's n samples, generated and executed, stay together)
    return shardUnits(context.settings.shard, 'humaneval', problems, (problem) => problem.task_id);
  });
}

/** Samples in the run: --limit capped by the data set's size once it was read, else the --limit asked for, × n. */
function samplesInRun(run: RunData): number | null {
  const { limit, n } = run.manifest.config.humaneval;
  const recorded = run.manifest.datasets[HUMANEVAL_DATASET];
  const problems = recorded ? (limit === undefined ? recorded.rowCount : Math.min(limit, recorded.rowCount)) : (limit ?? null);
  return problems === null ? null : problems * n;
}

/** Sample keys of every problem, in data-set order. */
function sampleKeys(problems: readonly HumanEvalProblem[], n: number, key: (taskId: string, index: number) => string): string[] {
  return problems.flatMap((problem) => Array.from({ length: n }, (_, index) => key(problem.task_id, index)));
}

const generateStage: Stage = {
  name: 'generate',
  needsEngine: true,
  async pending(context) {
    const records = await context.store.records(GENERATION_RECORDS);
    return sampleKeys(await humanEvalProblems(context), context.config.humaneval.n, generationKey).filter((key) => !records.has(key)).length;
  },
  async run(context) {
    await runGenerateStage({
      run: context.store,
      engine: () => context.engine(),
      problems: await humanEvalProblems(context),
      config: context.config.humaneval,
      seed: context.config.seed,
      batchSamples: context.settings.batchSize,
      signal: context.signal,
    });
  },
  async progress(run) {
    return { done: (await run.records(GENERATION_RECORDS)).size, total: samplesInRun(run), unit: 'samples' };
  },
};

const executeStage: Stage = {
  name: 'execute',
  needsEngine: false,
  async pending(context) {
    const records = await context.store.records(EXECUTION_RECORDS);
    return sampleKeys(await humanEvalProblems(context), context.config.humaneval.n, executionKey).filter((key) => !records.has(key)).length;
  },
  async run(context) {
    await runExecuteStage({
      run: context.store,
      problems: await humanEvalProblems(context),
      config: context.config.humaneval,
      concurrency: context.settings.concurrency,
      signal: context.signal,
    });
  },
  async progress(run) {
    const records = await run.records(EXECUTION_RECORDS);
    const detail: Record<string, number> = {};
    for (const record of records.values()) detail[record.status] = (detail[record.status] ?? 0) + 1;
    return { done: records.size, total: samplesInRun(run), unit: 'samples', detail };
  },
};

/** HumanEval pass@k: completions from the model, executed against the tests in the Docker sandbox. */
export const humanevalTask = defineTask({
  name: 'humaneval',
  version: 1,
  description: 'HumanEval pass@k: n completions per problem, each executed against its tests in the sandbox',
  options: HUMANEVAL_OPTIONS,
  configFrom: humanEvalConfigFrom,
  stages: [generateStage, executeStage],
  async score(context): Promise<HumanEvalResults> {
    const problems = await humanEvalProblems(context);
    const { n } = context.config.humaneval;
    const executed = await context.store.records(EXECUTION_RECORDS);
    const records: ExecutionRecord[] = [];
    for (const key of sampleKeys(problems, n, executionKey)) {
      const record = executed.get(key);
      if (!record) throw stageIncomplete('HumanEval execution', executed.size, problems.length * n, 'generate,execute');
      records.push(record);
    }
    const results = humanEvalResults(
      problems.map((problem) => problem.task_id),
      n,
      records,
    );
    if (results.isolation && results.isolation.suspect_count > 0) {
      log.warn(
        `humaneval: ${results.isolation.suspect_count} samples pass in the default mode but fail with the tests in their own process: suspect, the report lists them`,
      );
    }
    // A --limit run covers part of the benchmark: say so in results.json (and so in the output and the leaderboard)
    const available = context.store.manifest.datasets[HUMANEVAL_DATASET]?.rowCount ?? problems.length;
    const subset = { problems: problems.length, of: available, limit: context.config.humaneval.limit ?? null, is_subset: problems.length < available };
    if (subset.is_subset) log.warn(`humaneval: pass@k over the first ${subset.problems} of ${subset.of} problems (--limit): a subset`);
    return { ...results, subset };
  },
  headline: (section) => ({ ...section.estimates }),
});
