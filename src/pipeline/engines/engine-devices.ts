import { readdirSync } from 'node:fs';
import type { DeviceChoice } from '../../backends/engine/protocol.js';
import { UsageError } from '../../util/errors.js';

/** The most engine processes one run may start. */
export const MAX_ENGINES = 64;

/**
 * `--devices`: one engine process per entry. `0,1,3` (GPU indices: each engine sees only its GPU, through
 * CUDA_VISIBLE_DEVICES), `all` (every GPU the driver lists), or `cpu,cpu` (several engines on the CPU, each with its
 * own copy of the model: for tests, and for a host whose cores one engine cannot fill). Returns one entry per engine.
 */
export function parseDevices(text: string, device: DeviceChoice, gpuCount: () => number = countNvidiaGpus): string[] {
  const hint = 'e.g. --devices 0,1 (GPU indices), --devices all (every GPU), or --devices cpu,cpu (two engines on the CPU)';
  const entries = text.split(',').map((entry) => entry.trim());
  let devices: string[];
  if (entries.length === 1 && entries[0] === 'all') {
    const count = gpuCount();
    if (count === 0) throw new UsageError('--devices all: this machine shows no GPU', { hint });
    devices = Array.from({ length: count }, (_, index) => String(index));
  } else {
    for (const entry of entries) {
      if (entry !== 'cpu' && !/^\d+$/.test(entry)) throw new UsageError(`--devices: "${entry}" is not a GPU index or cpu`, { hint });
    }
    devices = entries;
  }
  const cpu = devices.filter((entry) => entry === 'cpu').length;
  if (cpu > 0 && cpu < devices.length) throw new UsageError(`--devices ${text} mixes cpu and GPUs: one run computes on one kind of device`, { hint });
  if (cpu === 0 && new Set(devices).size < devices.length) {
    throw new UsageError(`--devices ${text} names a GPU twice`, { hint: 'each GPU holds one engine; name each index once' });
  }
  if (devices.length > MAX_ENGINES) throw new UsageError(`--devices names ${devices.length} engines, more than ${MAX_ENGINES}`, { hint });
  if (cpu > 0 && device === 'cuda')
    throw new UsageError(`--devices ${text} is CPU engines, but --device is cuda`, { hint: 'use --device cpu with cpu engines' });
  if (cpu === 0 && device === 'cpu')
    throw new UsageError(`--devices ${text} names GPUs, but --device is cpu`, { hint: 'use --devices cpu,cpu for several CPU engines, or --device cuda' });
  return devices;
}

/** The engines' names in logs and manifests, by their place in --devices: `cuda:<index>`, or `cpu#<position>` (1-based). */
export function engineLabels(devices: readonly string[]): string[] {
  return devices.map((device, index) => (device === 'cpu' ? `cpu#${index + 1}` : `cuda:${device}`));
}

/** GPUs the NVIDIA driver lists (0 without a driver). */
function countNvidiaGpus(): number {
  try {
    return readdirSync('/proc/driver/nvidia/gpus').length;
  } catch {
    return 0;
  }
}
