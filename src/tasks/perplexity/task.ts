import { loadTextRows } from '../../datasets/load.js';
import { shardUnits } from '../../pipeline/shard.js';
import { stageIncomplete, type RunContext, type Stage } from '../../pipeline/stage.js';
import { log } from '../../util/log.js';
import { defineTask } from '../task.js';
import { PERPLEXITY_OPTIONS, perplexityConfigFrom } from './config.js';
import { PERPLEXITY_RECORDS, rowKey } from './records.js';
import { perplexityResults, type PerplexityResults } from './results.js';
import { DEFAULT_SCORE_BATCH_ROWS, runPerplexityStage, type TextRow } from './stage.js';

/** The texts to score, loaded once per run; their provenance goes into the manifest (and guards a resume). */
function perplexityTexts(context: RunContext): Promise<TextRow[]> {
  return context.once('perplexity:texts', async () => {
    const { perplexity } = context.config;
    const loaded = await loadTextRows(perplexity.dataset, {
      rows: perplexity.rows,
      split: perplexity.split,
      config: perplexity.config,
      revision: perplexity.revision,
      textField: perplexity.textField,
      signal: context.signal,
      ...context.hub,
    });
    await context.store.recordDataset('perplexity', { ...loaded.provenance, textField: loaded.textField });
    if (loaded.texts.length < perplexity.rows) {
      log.warn(
        `perplexity: ${perplexity.dataset} has ${loaded.texts.length} rows, fewer than the ${perplexity.rows} asked for (--rows): all ${loaded.texts.length} are scored`,
      );
    }
    // --shard i/N: this machine's share of the rows (by row index); the manifest keeps the whole data set's facts
    return shardUnits(context.settings.shard, 'perplexity', loaded.texts, (row) => String(row.index));
  });
}

const perplexityStage: Stage = {
  name: 'perplexity',
  needsEngine: true,
  async pending(context) {
    const texts = await perplexityTexts(context);
    const records = await context.store.records(PERPLEXITY_RECORDS);
    return texts.filter((row) => !records.has(rowKey(row.index))).length;
  },
  async run(context) {
    await runPerplexityStage({
      run: context.store,
      engine: await context.engine(),
      texts: await perplexityTexts(context),
      config: context.config.perplexity,
      batchRows: context.settings.batchSize ?? DEFAULT_SCORE_BATCH_ROWS,
      signal: context.signal,
    });
  },
  async progress(run) {
    const total = run.manifest.datasets.perplexity?.rowCount ?? null;
    const done = (await run.records(PERPLEXITY_RECORDS)).size;
    return { done, total, unit: 'rows' };
  },
};

/** Token perplexity and bits per byte of the first N rows of a text data set (the study: flytech/python-codes-25k). */
export const perplexityTask = defineTask({
  name: 'perplexity',
  version: 1,
  description: 'token perplexity and bits per byte of the first --rows texts of --dataset',
  options: PERPLEXITY_OPTIONS,
  configFrom: perplexityConfigFrom,
  stages: [perplexityStage],
  async score(context): Promise<PerplexityResults> {
    const provenance = context.store.manifest.datasets.perplexity;
    const records = (await context.store.records(PERPLEXITY_RECORDS)).all();
    if (!provenance || records.length < provenance.rowCount) throw stageIncomplete('perplexity', records.length, provenance?.rowCount ?? 0, 'perplexity');
    return { ...perplexityResults(records, provenance, context.config.perplexity.windowing ?? 'evalpipe'), rows_requested: context.config.perplexity.rows };
  },
  // The report's and leaderboard's figures stay these two (byte and word perplexity are in results.json).
  headline: (section) => ({ perplexity: section.estimates.perplexity, bits_per_byte: section.estimates.bits_per_byte }),
});
