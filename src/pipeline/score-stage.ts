import { TASK_REGISTRY } from '../tasks/registry.js';
import type { RunContext, Stage } from './stage.js';
import { RESULTS_SCHEMA_VERSION, writeResults, type RunResults } from './store/results.js';

/** Every task's section from its records: the run's results. Refuses (stage_incomplete) while work is missing. */
export async function scoreRun(context: RunContext, now: Date = new Date()): Promise<RunResults> {
  const { store, config } = context;
  const results: RunResults = {
    schema_version: RESULTS_SCHEMA_VERSION,
    run_id: store.manifest.run_id,
    run_dir: store.path,
    config_hash: store.manifest.config_hash,
    completed_at: now.toISOString(),
    model: config.model,
    quant: config.quant,
    attn: config.attn,
  };
  const sections = results as unknown as Record<string, unknown>;
  const versions: Record<string, number> = {};
  for (const task of TASK_REGISTRY) {
    if (!config.tasks.includes(task.name)) continue;
    sections[task.name] = await task.score(context);
    versions[task.name] = task.version;
  }
  results.versions = versions;
  return results;
}

/**
 * The score stage: the only writer of results.json, written whole once every task's records are complete. `report`,
 * `status` and `leaderboard` read their figures from it (and the manifest), never from the records.
 */
export const scoreStage: Stage = {
  name: 'score',
  needsEngine: false,
  async pending() {
    return 1; // cheap, and a re-score after an upgrade or a --stages score run is what the user asked for
  },
  async run(context) {
    await writeResults(context.store.path, await scoreRun(context));
  },
  async progress(run) {
    const done = run.results && run.results.config_hash === run.manifest.config_hash ? 1 : 0;
    return { done, total: 1, unit: 'results.json' };
  },
};
