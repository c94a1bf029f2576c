import { describe, expect, it } from 'vitest';
import { deviceSlots } from './sweep-placement.js';

describe('deviceSlots (sweep --devices)', () => {
  it('gives each entry its own slot when the configurations are as many or more, named by their place in --devices', () => {
    expect(deviceSlots(['cpu', 'cpu'], 2)).toEqual([
      { devices: ['cpu'], labels: ['cpu#1'] },
      { devices: ['cpu'], labels: ['cpu#2'] },
    ]);
    expect(deviceSlots(['0', '1', '3'], 6)).toEqual([
      { devices: ['0'], labels: ['cuda:0'] },
      { devices: ['1'], labels: ['cuda:1'] },
      { devices: ['3'], labels: ['cuda:3'] },
    ]);
  });

  it('cuts the entries into contiguous, even groups when there are fewer configurations than entries', () => {
    expect(deviceSlots(['0', '1', '2', '3'], 2)).toEqual([
      { devices: ['0', '1'], labels: ['cuda:0', 'cuda:1'] },
      { devices: ['2', '3'], labels: ['cuda:2', 'cuda:3'] },
    ]);
    expect(deviceSlots(['cpu', 'cpu', 'cpu', 'cpu', 'cpu'], 2)?.map((slot) => slot.labels)).toEqual([
      ['cpu#1', 'cpu#2', 'cpu#3'],
      ['cpu#4', 'cpu#5'],
    ]);
  });

  it('places nothing for one configuration, one entry or no --devices', () => {
    expect(deviceSlots(['0', '1'], 1)).toBeUndefined();
    expect(deviceSlots(['0'], 3)).toBeUndefined();
    expect(deviceSlots(undefined, 3)).toBeUndefined();
  });
});
