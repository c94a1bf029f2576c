import { describe, expect, it } from 'vitest';
import { UsageError } from '../../util/errors.js';
import { parseDevices } from './engine-devices.js';
import { forEachInQueue } from './shared-queue.js';

describe('--devices', () => {
  it('reads GPU indices, all, and cpu entries', () => {
    expect(parseDevices('0,1,3', 'auto')).toEqual(['0', '1', '3']);
    expect(parseDevices('all', 'cuda', () => 4)).toEqual(['0', '1', '2', '3']);
    expect(parseDevices('cpu,cpu,cpu', 'cpu')).toEqual(['cpu', 'cpu', 'cpu']);
  });

  it.each([
    ['0,cpu', 'auto', '--devices 0,cpu mixes cpu and GPUs'],
    ['0,0', 'auto', '--devices 0,0 names a GPU twice'],
    ['gpu0', 'auto', '--devices: "gpu0" is not a GPU index or cpu'],
    ['0,1', 'cpu', '--devices 0,1 names GPUs, but --device is cpu'],
    ['cpu,cpu', 'cuda', '--devices cpu,cpu is CPU engines, but --device is cuda'],
    ['all', 'auto', '--devices all: this machine shows no GPU'],
  ] as const)('refuses %s (--device %s) with one line', (text, device, message) => {
    const parse = () => parseDevices(text, device, () => 0);
    expect(parse).toThrow(UsageError);
    expect(parse).toThrow(message);
  });
});

describe('forEachInQueue', () => {
  it('hands the units out in order to the workers that are free, at most `workers` at once', async () => {
    let running = 0;
    let most = 0;
    const started: number[] = [];
    const gates = new Map<number, () => void>();
    const done = forEachInQueue([0, 1, 2, 3, 4], 2, async (unit) => {
      started.push(unit);
      running += 1;
      most = Math.max(most, running);
      await new Promise<void>((resolve) => gates.set(unit, resolve));
      running -= 1;
    });
    await Promise.resolve();
    expect(started).toEqual([0, 1]);
    gates.get(1)!(); // the worker that finishes first takes the next unit
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(started).toEqual([0, 1, 2]);
    for (const unit of [0, 2, 3, 4]) {
      while (!gates.has(unit)) await new Promise((resolve) => setTimeout(resolve, 0));
      gates.get(unit)!();
    }
    await done;
    expect(started).toEqual([0, 1, 2, 3, 4]);
    expect(most).toBe(2);
  });

  it('starts no unit after a failure, lets the ones in flight finish, and throws the first error', async () => {
    const finished: number[] = [];
    const run = forEachInQueue([0, 1, 2, 3], 2, async (unit) => {
      if (unit === 0) throw new Error('unit 0 failed');
      await new Promise((resolve) => setTimeout(resolve, 0));
      finished.push(unit);
    });
    await expect(run).rejects.toThrow('unit 0 failed');
    expect(finished).toEqual([1]);
  });
});
