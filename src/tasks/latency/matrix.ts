import { EngineRequestError } from '../../backends/engine/engine-errors.js';
import { EngineProcess } from '../../backends/engine/engine-process.js';
import type { AttentionBackend, DeviceChoice, EngineInfo, LoadResult, QuantMode } from '../../backends/engine/protocol.js';
import { log } from '../../util/log.js';
import type { LatencyConfig } from './config.js';
import type { LatencyCell } from './records.js';
import { runLatencyCells } from './stage.js';

export interface LatencyMatrixOptions {
  model: string;
  quants: readonly QuantMode[];
  attns: readonly AttentionBackend[];
  device: DeviceChoice;
  seed: number;
  /** The batch-invariant engine; undefined: the device's default. */
  deterministic: boolean | undefined;
  latency: LatencyConfig;
  /** Called once, with the card and versions, before the first cell. */
  onHeader?: (header: Record<string, unknown>) => void;
  onCell?: (cell: LatencyCell) => void | Promise<void>;
  signal?: AbortSignal;
}

/**
 * `evalpipe bench`: the latency matrix alone, without a run directory. One engine per precision × attention
 * (a fresh process, so one combination's memory never shapes the next); a combination the engine does not support
 * here (fp8 on a card without it) is skipped with a warning, not an error.
 */
export async function runLatencyMatrix(options: LatencyMatrixOptions): Promise<{ header: Record<string, unknown> | undefined; cells: LatencyCell[] }> {
  const cells: LatencyCell[] = [];
  let header: Record<string, unknown> | undefined;
  for (const quant of options.quants) {
    for (const attn of options.attns) {
      options.signal?.throwIfAborted();
      const engine = await EngineProcess.start({ signal: options.signal });
      try {
        let loaded: LoadResult;
        try {
          const deterministic = options.deterministic === undefined ? {} : { deterministic: options.deterministic };
          loaded = await engine.load(
            { model: options.model, quant, attn, device: options.device, seed: options.seed, ...deterministic },
            { signal: options.signal },
          );
        } catch (error) {
          if (error instanceof EngineRequestError && error.type === 'unsupported') {
            log.warn(`${quant}/${attn}: ${error.message} — skipped`);
            continue;
          }
          throw error;
        }
        if (!header) {
          const info = await engine.info({ timeoutMs: 60_000, signal: options.signal });
          header = { ...latencyHeader(info), deterministic: loaded.deterministic ?? false };
          options.onHeader?.(header);
        }
        await runLatencyCells({
          engine,
          model: options.model,
          quant,
          attn,
          latency: options.latency,
          onCell: async (_key, cell) => {
            cells.push(cell);
            await options.onCell?.(cell);
          },
          signal: options.signal,
        });
      } finally {
        await engine.close();
      }
    }
  }
  return { header, cells };
}

/** The card and versions a latency table was measured with. */
export function latencyHeader(info: EngineInfo): Record<string, unknown> {
  return {
    card: info.device.name,
    driver: info.device.driver ?? null,
    torch: info.torch,
    triton: info.triton ?? null,
    transformers: info.transformers ?? null,
    engine_version: info.engine_version,
    date: new Date().toISOString(),
  };
}
