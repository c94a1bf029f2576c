import { describe, expect, it } from 'vitest';
import { UsageError } from '../util/errors.js';
import { inShard, parseShard, shardOf, shardUnits } from './shard.js';

describe('--shard i/N', () => {
  it('parses i/N with 1 ≤ i ≤ N', () => {
    expect(parseShard('2/3')).toEqual({ index: 2, count: 3 });
    expect(parseShard(' 1 / 1 ')).toEqual({ index: 1, count: 1 });
  });

  it.each([
    ['0/3', '--shard 0/3: i must be from 1 to N (3)'],
    ['4/3', '--shard 4/3: i must be from 1 to N (3)'],
    ['1/0', '--shard 1/0: N must be from 1 to 4096'],
    ['2', '--shard must look like i/N, got "2"'],
    ['a/b', '--shard must look like i/N, got "a/b"'],
    ['1.5/3', '--shard must look like i/N, got "1.5/3"'],
    ['-1/3', '--shard must look like i/N, got "-1/3"'],
  ])('refuses %s with one line', (text, message) => {
    expect(() => parseShard(text)).toThrow(UsageError);
    expect(() => parseShard(text)).toThrow(message);
  });

  it('puts every unit in exactly one shard, by its task and key alone (not by order or what else there is)', () => {
    const units = Array.from({ length: 500 }, (_, index) => String(index));
    for (const count of [1, 2, 3, 7]) {
      const shares = Array.from({ length: count }, (_, i) => shardUnits({ index: i + 1, count }, 'perplexity', units, (unit) => unit));
      expect(shares.flat().sort()).toEqual([...units].sort());
      for (const share of shares) expect(share.length).toBeGreaterThan(500 / count / 2); // no shard starves
      const reversed = shardUnits({ index: 1, count }, 'perplexity', [...units].reverse(), (unit) => unit);
      expect(new Set(reversed)).toEqual(new Set(shares[0]));
      expect(shardUnits({ index: 1, count }, 'perplexity', units.slice(0, 10), (unit) => unit)).toEqual(shares[0]!.filter((unit) => Number(unit) < 10));
    }
    // the task is part of the key: the same ids of two tasks spread independently
    const differ = units.filter((unit) => shardOf('perplexity', unit, 3) !== shardOf('humaneval', unit, 3));
    expect(differ.length).toBeGreaterThan(100);
    expect(inShard(undefined, 'humaneval', 'HumanEval/0')).toBe(true);
  });
});
