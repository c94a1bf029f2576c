import { join, resolve } from 'node:path';
import { loadTextRows } from '../datasets/load.js';
import { writeJsonAtomic } from '../util/atomic-file.js';
import { writeRunReports } from './report/write-reports.js';
import { RunStoreError, UsageError } from '../util/errors.js';
import { log } from '../util/log.js';
import { EngineSession } from './engine-session.js';
import { PERPLEXITY_STAGE, runPerplexityStage, summarisePerplexity, type PerplexitySummary } from './perplexity-stage.js';
import { defaultRunId, stagesForTasks, type RunConfig, type RunSettings, type Stage } from './run-config.js';
import { RESULTS_FILE, RunDirectory } from './run-directory.js';
import type { ScoredRow } from '../engine/protocol.js';
import type { HubOptions } from './hub-options.js';

export const RESULTS_SCHEMA_VERSION = 1;

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
}

/** Run (or resume) one evaluation: every stage reads the records before it and appends its own. */
export async function runEvaluation(
  config: RunConfig,
  settings: RunSettings,
  hub: HubOptions,
  signal?: AbortSignal,
): Promise<RunResults | undefined> {
  const runId = defaultRunId(config);
  const runDir = resolve(settings.runDir ?? join(process.cwd(), 'results', runId));
  const stages = settings.stages ?? stagesForTasks(config.tasks);
  const run = await RunDirectory.open(runDir, config, { fresh: settings.fresh, runId });
  log.info(`${run.resumed ? 'resuming' : 'starting'} run ${run.manifest.run_id} in ${runDir}`);
  const engine = new EngineSession(run, config, { signal, verbose: settings.verbose });
  try {
    if (stages.includes('perplexity') && config.tasks.includes('perplexity')) {
      const loaded = await loadTextRows(config.perplexity.dataset, {
        rows: config.perplexity.rows,
        split: config.perplexity.split,
        config: config.perplexity.config,
        revision: config.perplexity.revision,
        textField: config.perplexity.textField,
        signal,
        ...hub,
      });
      await recordDataset(run, PERPLEXITY_STAGE, loaded.provenance, loaded.textField);
      const records = await run.stage(PERPLEXITY_STAGE);
      if (loaded.texts.some((row) => !records.has(`row:${row.index}`))) {
        await runPerplexityStage({
          run,
          engine: await engine.get(),
          texts: loaded.texts,
          config: config.perplexity,
          batchRows: settings.scoreBatchRows,
          signal,
        });
      }
    }
    await engine.close();
    if (!stages.includes('score')) return undefined;
    const results = await scoreRun(run, config);
    await writeJsonAtomic(run.file(RESULTS_FILE), results);
    if (stages.includes('report')) await writeRunReports([run.path], run.path);
    return results;
  } finally {
    await engine.close();
    await run.close();
  }
}

/** Record a data set's provenance; on resume, refuse if its content changed under the run. */
async function recordDataset(
  run: RunDirectory,
  name: string,
  provenance: RunDirectory['manifest']['datasets'][string],
  textField: string,
): Promise<void> {
  const previous = run.manifest.datasets[name];
  if (previous && previous.contentSha256 !== provenance.contentSha256) {
    throw new RunStoreError(
      `the ${name} data set changed since this run started (content sha256 ${previous.contentSha256.slice(0, 12)} → ${provenance.contentSha256.slice(0, 12)})`,
      { hint: 'pin --revision to the one in manifest.json, or pass --fresh to start over' },
    );
  }
  if (!previous) await run.updateManifest({ datasets: { ...run.manifest.datasets, [name]: { ...provenance, textField } as typeof provenance } });
}

/** Turn the records into results. Refuses when a task's records are incomplete. */
async function scoreRun(run: RunDirectory, config: RunConfig): Promise<RunResults> {
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
    const provenance = run.manifest.datasets[PERPLEXITY_STAGE];
    const records = (await run.stage(PERPLEXITY_STAGE)).all() as unknown as ScoredRow[];
    if (!provenance || records.length < provenance.rowCount) {
      throw new RunStoreError(`perplexity is incomplete: ${records.length} of ${provenance?.rowCount ?? '?'} rows scored`, {
        hint: 'run the perplexity stage first (--stages perplexity,score,report) or the whole run again',
      });
    }
    const textField = (provenance as unknown as { textField?: string }).textField ?? '';
    results.perplexity = { ...summarisePerplexity(records), dataset: provenance.id, text_field: textField };
  }
  return results;
}

export function assertStages(stages: Stage[]): void {
  if (stages.length === 0) throw new UsageError('--stages is empty', { hint: 'name at least one stage, e.g. --stages perplexity,score' });
}
