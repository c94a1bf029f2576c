import { stageIncomplete, type RunContext, type Stage } from '../../pipeline/stage.js';
import { inShard } from '../../pipeline/shard.js';
import { defineTask } from '../task.js';
import { LATENCY_OPTIONS, latencyConfigFrom } from './config.js';
import { LATENCY_RECORDS, latencyKey, type LatencyCell } from './records.js';
import { runLatencyCells } from './stage.js';

/** results.json `latency`: the card and versions it ran on, and every cell of the matrix in batch × context order. */
export interface LatencyResults {
  header: Record<string, unknown>;
  cells: LatencyCell[];
}

function cellKeys(context: Pick<RunContext, 'config'>): string[] {
  const { config } = context;
  return config.latency.batches.flatMap((batch) => config.latency.contexts.map((ctx) => latencyKey(config.quant, config.attn, batch, ctx)));
}

const latencyStage: Stage = {
  name: 'latency',
  needsEngine: true,
  async pending(context) {
    // --shard i/N: the matrix is one unit, measured whole on one machine, so every cell comes from the same card
    if (!inShard(context.settings.shard, 'latency', 'matrix')) return 0;
    const records = await context.store.records(LATENCY_RECORDS);
    return cellKeys(context).filter((key) => !records.has(key)).length;
  },
  async run(context) {
    const { config } = context;
    const records = await context.store.records(LATENCY_RECORDS);
    await runLatencyCells({
      engine: await context.engine(),
      model: config.model,
      quant: config.quant,
      attn: config.attn,
      latency: config.latency,
      isDone: (key) => records.has(key),
      onCell: (key, cell, times) => records.append({ key, ...cell, times }),
      signal: context.signal,
    });
  },
  async progress(run) {
    const { latency } = run.manifest.config;
    const done = (await run.records(LATENCY_RECORDS)).size;
    return { done, total: latency.batches.length * latency.contexts.length, unit: 'cells' };
  },
};

/** The study's latency and peak memory matrix over batch × context, OOM cells recorded and kept. */
export const latencyTask = defineTask({
  name: 'latency',
  version: 1,
  description: 'time per minibatch and peak memory over --batches × --contexts',
  options: LATENCY_OPTIONS,
  configFrom: latencyConfigFrom,
  stages: [latencyStage],
  async score(context): Promise<LatencyResults> {
    const records = await context.store.records(LATENCY_RECORDS);
    const keys = cellKeys(context);
    const cells: LatencyCell[] = keys.map((key) => {
      const record = records.get(key);
      if (!record) throw stageIncomplete('latency', records.size, keys.length, 'latency');
      const { v: _v, key: _key, sum: _sum, times: _times, ...cell } = record;
      return cell;
    });
    const { manifest } = context.store;
    const device = manifest.hardware.device;
    return {
      header: {
        card: device?.name ?? null,
        driver: device?.driver ?? null,
        torch: manifest.engine?.torch ?? null,
        triton: manifest.engine?.triton ?? null,
        date: manifest.updated_at,
      },
      cells,
    };
  },
  headline: () => ({}), // the latency matrix has its own tables; no single figure ranks it
});
