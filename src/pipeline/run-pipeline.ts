import { join, resolve } from 'node:path';
import { loadHumanEval, type HumanEvalProblem } from '../tasks/humaneval/dataset.js';
import type { DatasetProvenance } from '../datasets/load.js';
import { loadTextRows } from '../datasets/load.js';
import type { ScoredRow } from '../engine/protocol.js';
import { writeJsonAtomic } from '../util/atomic-file.js';
import { EvalpipeError, RunStoreError } from '../util/errors.js';
import { log } from '../util/log.js';
import { EngineSession } from './engine-session.js';
import { EXECUTE_STAGE, executionKey, runExecuteStage, type ExecutionRecord } from '../tasks/humaneval/execute-stage.js';
import { DEFAULT_GENERATE_BATCH_SAMPLES, runGenerateStage } from '../tasks/humaneval/generate-stage.js';
import type { HubOptions } from '../datasets/hub-options.js';
import { LATENCY_STAGE, latencyKey, runLatencyStage, type LatencyCell } from '../tasks/latency/stage.js';
import { scorePassAtK, type PassAtKSummary } from '../tasks/humaneval/pass-at-k.js';
import {
  DEFAULT_SCORE_BATCH_ROWS,
  PERPLEXITY_STAGE,
  rowKey,
  runPerplexityStage,
  summarisePerplexity,
  type PerplexitySummary,
} from '../tasks/perplexity/stage.js';
import { writeRunReports } from './report/write-reports.js';
import { defaultRunId, stagesForTasks, type RunConfig, type RunSettings } from './run-config.js';
import { RESULTS_FILE, RunDirectory } from './store/run-directory.js';
import { acquireRunLock } from './store/run-lock.js';
import { summariseIsolation, type IsolationSummary } from '../tasks/humaneval/isolation-summary.js';

export const RESULTS_SCHEMA_VERSION = 1;
const HUMANEVAL_DATASET = 'humaneval';

export interface HumanEvalResults {
  pass_at_k: Record<string, number>;
  omitted_k: PassAtKSummary['omitted'];
  n_problems: number;
  n_samples_per_problem: number;
  status_counts: Record<string, number>;
  per_problem: { task_id: string; n: number; c: number; pass_at_k: Record<string, number> }[];
  /** Only with --verdicts isolated: the suspects and the problems that could not run isolated. */
  isolation?: IsolationSummary;
}

export interface RunResults {
  schema_version: number;
  run_id: string;
  run_dir: string;
  config_hash: string;
  completed_at: string;
  model: string;
  quant: string;
  attn: string;
  perplexity?: PerplexitySummary & { dataset: string; text_field: string };
  humaneval?: HumanEvalResults;
  latency?: { header: Record<string, unknown>; cells: LatencyCell[] };
}

/** Where a run lives: --run-dir, else results/<run-id> under the working directory (named by the config hash). */
export function runDirectoryFor(config: RunConfig, settings: Pick<RunSettings, 'runDir'>): string {
  return resolve(settings.runDir ?? join(process.cwd(), 'results', defaultRunId(config)));
}

/**
 * Run (or resume) one evaluation. Each stage reads the records before it and appends its own, so a run can stop
 * at any moment and the same command finishes it; `--stages` runs a subset (generate on a GPU machine, then
 * execute,score,report elsewhere on a copy of the run directory).
 */
export async function runEvaluation(
  config: RunConfig,
  settings: RunSettings,
  hub: HubOptions,
  signal?: AbortSignal,
): Promise<RunResults | undefined> {
  const runId = defaultRunId(config);
  const runDir = runDirectoryFor(config, settings);
  const stages = settings.stages ?? stagesForTasks(config.tasks);
  const releaseLock = await acquireRunLock(runDir);
  let run: RunDirectory;
  try {
    run = await RunDirectory.open(runDir, config, { fresh: settings.fresh, runId });
  } catch (error) {
    await releaseLock();
    throw error;
  }
  log.info(`${run.resumed ? 'resuming' : 'starting'} run ${run.manifest.run_id} in ${runDir}`);
  const batching = {
    perplexity_rows_per_request: settings.batchSize ?? DEFAULT_SCORE_BATCH_ROWS,
    generate_samples_per_batch: settings.batchSize ?? DEFAULT_GENERATE_BATCH_SAMPLES,
  };
  await run.updateManifest({ batching });
  const engine = new EngineSession(run, config, { signal, verbose: settings.verbose });
  try {
    const wants = (task: RunConfig['tasks'][number]): boolean => config.tasks.includes(task);
    if (stages.includes('perplexity') && wants('perplexity')) {
      const loaded = await loadTextRows(config.perplexity.dataset, {
        rows: config.perplexity.rows,
        split: config.perplexity.split,
        config: config.perplexity.config,
        revision: config.perplexity.revision,
        textField: config.perplexity.textField,
        signal,
        ...hub,
      });
      await recordDataset(run, PERPLEXITY_STAGE, { ...loaded.provenance, textField: loaded.textField });
      const records = await run.stage(PERPLEXITY_STAGE);
      if (loaded.texts.some((row) => !records.has(rowKey(row.index)))) {
        const batchRows = batching.perplexity_rows_per_request;
        await runPerplexityStage({ run, engine: await engine.get(), texts: loaded.texts, config: config.perplexity, batchRows, signal });
      }
    }
    const needsProblems = wants('humaneval') && stages.some((stage) => stage === 'generate' || stage === 'execute' || stage === 'score');
    const problems = needsProblems ? await humanEvalProblems(run, config, hub, signal) : [];
    if (stages.includes('generate') && wants('humaneval')) {
      const batchSamples = batching.generate_samples_per_batch;
      await runGenerateStage({ run, engine: () => engine.get(), problems, config: config.humaneval, seed: config.seed, batchSamples, signal });
    }
    if (stages.includes('latency') && wants('latency')) {
      await runLatencyStage({ run, engine: () => engine.get(), config, signal });
    }
    await engine.close();
    if (stages.includes('execute') && wants('humaneval')) {
      await runExecuteStage({ run, problems, config: config.humaneval, concurrency: settings.concurrency, signal });
    }
    if (!stages.includes('score')) return undefined;
    const results = await scoreRun(run, config, problems);
    await writeJsonAtomic(run.file(RESULTS_FILE), results);
    if (stages.includes('report')) {
      const written = await writeRunReports([run.path], run.path);
      log.info(`report: ${written.markdown}, ${written.html}`);
    }
    return results;
  } finally {
    await engine.close();
    await run.close();
    await releaseLock();
  }
}

async function humanEvalProblems(run: RunDirectory, config: RunConfig, hub: HubOptions, signal?: AbortSignal): Promise<HumanEvalProblem[]> {
  const set = await loadHumanEval(config.humaneval.source, { signal, ...hub });
  await recordDataset(run, HUMANEVAL_DATASET, set.provenance);
  return config.humaneval.limit === undefined ? set.problems : set.problems.slice(0, config.humaneval.limit);
}

/** Record a data set's provenance; on resume, refuse if its content changed under the run. */
async function recordDataset(run: RunDirectory, name: string, provenance: DatasetProvenance & { textField?: string }): Promise<void> {
  const previous = run.manifest.datasets[name];
  if (previous && previous.contentSha256 !== provenance.contentSha256) {
    throw new RunStoreError(
      `the ${name} data set changed since this run started (content sha256 ${previous.contentSha256.slice(0, 12)} → ${provenance.contentSha256.slice(0, 12)})`,
      { hint: 'pin the data set revision recorded in manifest.json, or pass --fresh to start over' },
    );
  }
  if (!previous) await run.updateManifest({ datasets: { ...run.manifest.datasets, [name]: provenance } });
}

function incomplete(what: string, done: number, total: number, stages: string): EvalpipeError {
  return new EvalpipeError('stage_incomplete', `${what} is incomplete: ${done} of ${total} done`, {
    hint: `run the missing stages first (--stages ${stages}) or run the whole command again`,
  });
}

/** Turn the records into results. Refuses when a task's records are incomplete. */
async function scoreRun(run: RunDirectory, config: RunConfig, problems: readonly HumanEvalProblem[]): Promise<RunResults> {
  const results: RunResults = {
    schema_version: RESULTS_SCHEMA_VERSION,
    run_id: run.manifest.run_id,
    run_dir: run.path,
    config_hash: run.manifest.config_hash,
    completed_at: new Date().toISOString(),
    model: config.model,
    quant: config.quant,
    attn: config.attn,
  };
  if (config.tasks.includes('perplexity')) {
    const provenance = run.manifest.datasets[PERPLEXITY_STAGE] as (DatasetProvenance & { textField?: string }) | undefined;
    const records = (await run.stage(PERPLEXITY_STAGE)).all() as unknown as ScoredRow[];
    if (!provenance || records.length < provenance.rowCount) throw incomplete('perplexity', records.length, provenance?.rowCount ?? 0, 'perplexity');
    results.perplexity = { ...summarisePerplexity(records), dataset: provenance.id, text_field: provenance.textField ?? '' };
  }
  if (config.tasks.includes('humaneval')) {
    const executed = await run.stage(EXECUTE_STAGE);
    const n = config.humaneval.n;
    const statusCounts: Record<string, number> = {};
    const counts = problems.map((problem) => {
      let c = 0;
      for (let index = 0; index < n; index += 1) {
        const record = executed.get(executionKey(problem.task_id, index)) as unknown as ExecutionRecord | undefined;
        if (!record) throw incomplete('HumanEval execution', executed.size, problems.length * n, 'generate,execute');
        statusCounts[record.status] = (statusCounts[record.status] ?? 0) + 1;
        if (record.passed) c += 1;
      }
      return { taskId: problem.task_id, n, c };
    });
    const scored = scorePassAtK(counts);
    const isolation = summariseIsolation(
      problems.flatMap((problem) => Array.from({ length: n }, (_, index) => executed.get(executionKey(problem.task_id, index))!)),
    );
    results.humaneval = {
      pass_at_k: scored.passAtK,
      omitted_k: scored.omitted,
      n_problems: problems.length,
      n_samples_per_problem: n,
      status_counts: statusCounts,
      per_problem: scored.problems.map((problem) => ({ task_id: problem.taskId, n: problem.n, c: problem.c, pass_at_k: problem.passAtK })),
      ...(isolation ? { isolation } : {}),
    };
    if (isolation && isolation.suspect_count > 0) {
      log.warn(`humaneval: ${isolation.suspect_count} samples pass in the default mode but fail with the tests in their own process: suspect, the report lists them`);
    }
  }
  if (config.tasks.includes('latency')) {
    const records = await run.stage(LATENCY_STAGE);
    const cells: LatencyCell[] = [];
    for (const batch of config.latency.batches) {
      for (const ctx of config.latency.contexts) {
        const record = records.get(latencyKey(config.quant, config.attn, batch, ctx));
        if (!record) throw incomplete('latency', records.size, config.latency.batches.length * config.latency.contexts.length, 'latency');
        const { v: _v, key: _key, sum: _sum, times: _times, ...cell } = record;
        cells.push(cell as unknown as LatencyCell);
      }
    }
    const device = run.manifest.hardware.device;
    const engine = run.manifest.engine;
    results.latency = {
      header: {
        card: device?.name ?? null,
        driver: device?.driver ?? null,
        torch: engine?.torch ?? null,
        triton: engine?.triton ?? null,
        date: run.manifest.updated_at,
      },
      cells,
    };
  }
  return results;
}
