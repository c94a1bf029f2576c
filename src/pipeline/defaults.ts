import type { AttentionBackend, DeviceChoice, QuantMode } from '../backends/engine/protocol.js';

/**
 * The one defaults table: every command that takes these options (`run`, `sweep`, `bench`) resolves a missing
 * value here, so the same option never defaults differently from one command to the next.
 */
export const DEFAULTS = {
  model: 'bigcode/starcoder2-3b',
  seed: 1234,
  /** The attention backend when --attn is not given. */
  attn: 'sdpa' as AttentionBackend,
  latency: {
    batches: [2, 4, 8],
    contexts: [4096, 8192, 16384],
    warmup: 2,
    iters: 4,
    repeats: 4,
  },
} as const;

/** The precision when --quant is not given: fp32 on the CPU (its reference), bf16 where a GPU may run. */
export function defaultQuant(device: DeviceChoice): QuantMode {
  return device === 'cpu' ? 'fp32' : 'bf16';
}

/** A list default as the CLI spells it (`2,4,8`). */
export function commaList(values: readonly number[]): string {
  return values.join(',');
}
