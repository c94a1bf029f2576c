import type { ModelBackend } from '../../backends/model-backend.js';
import { log } from '../../util/log.js';
import type { LatencyConfig } from './config.js';
import { latencyKey, type LatencyCell } from './records.js';

/**
 * The study's protocol, one cell per batch × context: 2 warm-up minibatches, then 4 timed minibatches repeated
 * 4 times; time per minibatch is the median. An out-of-memory cell is recorded as OOM and the run carries on.
 */
export async function runLatencyCells(options: {
  engine: ModelBackend;
  model: string;
  quant: string;
  attn: string;
  latency: LatencyConfig;
  isDone?: (key: string) => boolean;
  onCell: (key: string, cell: LatencyCell, times: number[]) => Promise<void>;
  signal?: AbortSignal;
}): Promise<void> {
  const { latency } = options;
  for (const batch of latency.batches) {
    for (const ctx of latency.contexts) {
      options.signal?.throwIfAborted();
      const key = latencyKey(options.quant, options.attn, batch, ctx);
      if (options.isDone?.(key)) continue;
      const result = await options.engine.bench(
        { batch, ctx, warmup: latency.warmup, iters: latency.iters, repeats: latency.repeats },
        { signal: options.signal },
      );
      const cell: LatencyCell = {
        model: options.model,
        quant: options.quant,
        attn: options.attn,
        batch,
        ctx,
        status: result.status,
        seconds_per_minibatch: result.seconds_per_minibatch,
        tokens_per_s: result.tokens_per_s,
        peak_gib: result.peak_gib,
      };
      log.info(
        `latency ${options.quant}/${options.attn} ${batch}x${ctx}: ${
          cell.status === 'oom'
            ? 'OOM'
            : `${cell.seconds_per_minibatch?.toFixed(4)} s/minibatch, ${Math.round(cell.tokens_per_s ?? 0)} tokens/s, peak ${formatGib(cell.peak_gib)}`
        }`,
      );
      await options.onCell(key, cell, result.times ?? []);
    }
  }
}

/** Peak memory for humans: GiB with one decimal, or n/a where the device does not report it (CPU). */
export function formatGib(value: number | null | undefined): string {
  return value === null || value === undefined ? 'n/a' : `${value.toFixed(2)} GiB`;
}
