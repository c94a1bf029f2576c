import { describe, expect, it } from 'vitest';
import { type DeviceProbeInputs, resolveDevice } from './device-probe.js';

function probe(overrides: Partial<DeviceProbeInputs> & { asked?: string[] }): DeviceProbeInputs {
  const asked = overrides.asked ?? [];
  return {
    env: overrides.env ?? {},
    hasNvidiaGpu: () => {
      asked.push('driver');
      return overrides.hasNvidiaGpu?.() ?? true;
    },
    torchSeesCuda: () => {
      asked.push('torch');
      return overrides.torchSeesCuda?.() ?? true;
    },
  };
}

describe('resolveDevice', () => {
  it('an explicit device is taken as given, without probing', () => {
    const asked: string[] = [];
    expect(resolveDevice('cpu', probe({ asked }))).toBe('cpu');
    expect(resolveDevice('cuda', probe({ asked, hasNvidiaGpu: () => false }))).toBe('cuda');
    expect(asked).toEqual([]);
  });

  it('auto is CUDA only when a driver shows a GPU and torch can use it', () => {
    expect(resolveDevice('auto', probe({}))).toBe('cuda');
    expect(resolveDevice('auto', probe({ torchSeesCuda: () => false }))).toBe('cpu');
  });

  it('auto on a machine without an NVIDIA driver is the CPU, and Python is never started', () => {
    const asked: string[] = [];
    expect(resolveDevice('auto', probe({ asked, hasNvidiaGpu: () => false }))).toBe('cpu');
    expect(asked).toEqual(['driver']);
  });

  it.each(['', ' ', '-1'])('CUDA_VISIBLE_DEVICES=%j hides every GPU: auto is the CPU', (visible) => {
    const asked: string[] = [];
    expect(resolveDevice('auto', probe({ asked, env: { CUDA_VISIBLE_DEVICES: visible } }))).toBe('cpu');
    expect(asked).toEqual([]);
  });
});
