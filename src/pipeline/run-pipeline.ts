import { rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { HubOptions } from '../datasets/hub-options.js';
import { DEFAULT_GENERATE_BATCH_SAMPLES } from '../tasks/humaneval/generate-stage.js';
import { DEFAULT_SCORE_BATCH_ROWS } from '../tasks/perplexity/stage.js';
import { log } from '../util/log.js';
import { pathExists } from '../util/path-exists.js';
import { EngineSession } from './engine-session.js';
import { defaultRunId, type RunConfig, type RunSettings } from './run-config.js';
import type { RunContext } from './stage.js';
import { SCORING_STAGES, stagesForTasks } from './stages.js';
import { shardDirectorySuffix, shardLabel } from './shard.js';
import { claimShard } from './shard-claim.js';
import { readResults, type RunResults } from './store/results.js';
import { RunDirectory } from './store/run-directory.js';
import { runDirectoryError } from './store/file-system-error.js';
import { acquireRunLock } from './store/run-lock.js';

/** Where a run lives: --run-dir, else <--results-dir or ./results>/<run-id> (named by the config hash). */
export function runDirectoryFor(config: RunConfig, settings: Pick<RunSettings, 'runDir' | 'resultsDir' | 'shard'>): string {
  return resolve(settings.runDir ?? join(settings.resultsDir ?? join(process.cwd(), 'results'), defaultRunId(config) + shardDirectorySuffix(settings.shard)));
}

/**
 * Run (or resume) one evaluation: a loop over the run's stages (its tasks' work stages, then score and report),
 * each run only when it has pending work. Every stage reads the records before it and appends its own, so a run
 * can stop at any moment and the same command finishes it. The stages that need the engine go first and share one
 * engine, which is closed before the others start (the sandbox gets the machine). `--stages` runs a subset
 * (generate on a GPU machine, then execute,score,report elsewhere on a copy of the run directory).
 * Returns results.json's content when the score stage ran.
 */
export async function runEvaluation(config: RunConfig, settings: RunSettings, hub: HubOptions, signal?: AbortSignal): Promise<RunResults | undefined> {
  const runDir = runDirectoryFor(config, settings);
  const existedBefore = await pathExists(runDir);
  let releaseLock: () => Promise<void>;
  let store: RunDirectory | undefined;
  try {
    releaseLock = await acquireRunLock(runDir);
  } catch (error) {
    throw runDirectoryError(runDir, error);
  }
  try {
    store = await RunDirectory.open(runDir, config, { fresh: settings.fresh, runId: defaultRunId(config) });
    await claimShard(store, settings.shard, config);
  } catch (error) {
    await store?.close();
    await releaseLock();
    if (!existedBefore) await rm(runDir, { recursive: true, force: true }).catch(() => undefined);
    throw runDirectoryError(runDir, error);
  }
  log.info(`${store.resumed ? 'resuming' : 'starting'} run ${store.manifest.run_id} in ${runDir}`);
  await store.updateManifest({
    batching: {
      perplexity_rows_per_request: settings.batchSize ?? DEFAULT_SCORE_BATCH_ROWS,
      generate_samples_per_batch: settings.batchSize ?? DEFAULT_GENERATE_BATCH_SAMPLES,
    },
  });
  const engine = new EngineSession(store, config, {
    signal,
    verbose: settings.verbose,
    backendSettings: settings.backendSettings,
    devices: settings.devices,
    labels: settings.engineLabels,
  });
  const shared = new Map<string, Promise<unknown>>();
  const context: RunContext = {
    store,
    config,
    settings,
    hub,
    signal,
    engine: () => engine.get(),
    once: <T>(key: string, make: () => Promise<T>): Promise<T> => {
      if (!shared.has(key)) shared.set(key, make());
      return shared.get(key) as Promise<T>;
    },
  };
  // A shard does its share of the work stages only: its figures would cover part of the units (`merge` scores).
  const selected = stagesForTasks(config.tasks)
    .filter((stage) => settings.stages === undefined || settings.stages.includes(stage.name))
    .filter((stage) => settings.shard === undefined || !SCORING_STAGES.includes(stage.name));
  const ordered = [...selected.filter((stage) => stage.needsEngine), ...selected.filter((stage) => !stage.needsEngine)];
  let failed = false;
  try {
    for (const stage of ordered) {
      signal?.throwIfAborted();
      if (!stage.needsEngine) await engine.close();
      if ((await stage.pending(context)) > 0) await stage.run(context);
    }
    if (settings.shard)
      log.info(`shard ${shardLabel(settings.shard)} done in ${runDir}: \`evalpipe merge\` the ${settings.shard.count} shards' directories to score them`);
    return selected.some((stage) => stage.name === 'score') ? await readResults(store.path) : undefined;
  } catch (error) {
    failed = true;
    throw runDirectoryError(runDir, error);
  } finally {
    await engine.close();
    await store.close();
    // A run that failed before any record was written (a model that does not load, a data set that is not there)
    // leaves no directory behind when it made the directory itself: nothing in it could be resumed.
    const leaveNothing = failed && !existedBefore && !(await store.hasRecords());
    await releaseLock();
    if (leaveNothing) await rm(runDir, { recursive: true, force: true }).catch(() => undefined);
  }
}
