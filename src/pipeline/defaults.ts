import { type ResolvedDevice, resolveDevice } from '../backends/engine/device-probe.js';
import type { AttentionBackend, DeviceChoice, QuantMode } from '../backends/engine/protocol.js';

/**
 * The one defaults table: every command that takes these options (`run`, `sweep`, `bench`) resolves a missing
 * value here, so the same option never defaults differently from one command to the next.
 */
export const DEFAULTS = {
  model: 'bigcode/starcoder2-3b',
  seed: 1234,
  latency: {
    batches: [2, 4, 8],
    contexts: [4096, 8192, 16384],
    warmup: 2,
    iters: 4,
    repeats: 4,
  },
} as const;

/** The precision and attention backend a run gets when --quant / --attn are not given, per device. */
export const DEVICE_DEFAULTS: Readonly<Record<ResolvedDevice, { quant: QuantMode; attn: AttentionBackend }>> = {
  /** The CPU's reference: full precision, PyTorch's SDPA (our Triton flash kernel needs a GPU). */
  cpu: { quant: 'fp32', attn: 'sdpa' },
  /** What a GPU evaluation is run in: bf16 weights and our flash-attention kernel. */
  cuda: { quant: 'bf16', attn: 'flash' },
};

/** The defaults for a --device choice, `auto` resolved the way the engine resolves it (device-probe.ts). */
export function deviceDefaults(device: DeviceChoice): { quant: QuantMode; attn: AttentionBackend } {
  return DEVICE_DEFAULTS[resolveDevice(device)];
}

/** How the defaults read in --help. */
export const DEVICE_DEFAULTS_HELP = 'CPU: fp32 + sdpa; GPU: bf16 + flash';

/** A list default as the CLI spells it (`2,4,8`). */
export function commaList(values: readonly number[]): string {
  return values.join(',');
}
