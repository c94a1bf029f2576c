import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import type { DeviceChoice } from './protocol.js';
import { enginePythonCommand } from './python-command.js';

/** Where the engine will run: what `--device auto` resolves to. */
export type ResolvedDevice = 'cpu' | 'cuda';

/** What the probe looks at; tests pass their own. */
export interface DeviceProbeInputs {
  env: NodeJS.ProcessEnv;
  /** Whether the machine shows an NVIDIA driver with at least one GPU (cheap: no Python). */
  hasNvidiaGpu: () => boolean;
  /** Whether the engine's torch can use CUDA (starts Python: only asked when a GPU is there). */
  torchSeesCuda: () => boolean;
}

/**
 * The device `--device auto` means on this machine, as the engine will pick it: CUDA when torch can use a GPU,
 * else the CPU. A machine without an NVIDIA driver (CI, a laptop) answers at once; one with a GPU asks the engine's
 * own Python once per process (about a second), so the defaults table and the engine never disagree.
 */
export function resolveDevice(choice: DeviceChoice, inputs: DeviceProbeInputs = systemProbe): ResolvedDevice {
  if (choice !== 'auto') return choice;
  const visible = inputs.env.CUDA_VISIBLE_DEVICES;
  if (visible !== undefined && (visible.trim() === '' || visible.trim() === '-1')) return 'cpu';
  if (!inputs.hasNvidiaGpu()) return 'cpu';
  return inputs.torchSeesCuda() ? 'cuda' : 'cpu';
}

let torchAnswer: boolean | undefined;

const systemProbe: DeviceProbeInputs = {
  env: process.env,
  hasNvidiaGpu: () => {
    try {
      return readdirSync('/proc/driver/nvidia/gpus').length > 0;
    } catch {
      return existsSync('/dev/nvidia0');
    }
  },
  torchSeesCuda: () => {
    if (torchAnswer === undefined) {
      const python = enginePythonCommand();
      const probe = spawnSync(python.executable, ['-c', 'import torch; print(int(torch.cuda.is_available()))'], {
        env: python.env,
        encoding: 'utf8',
        timeout: 120_000,
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      torchAnswer = probe.status === 0 && probe.stdout.trim() === '1';
    }
    return torchAnswer;
  },
};
