import { describe, expect, it } from 'vitest';
import { passAtK, scorePassAtK } from './pass-at-k.js';

/** The textbook form with exact big-integer binomials, to hold the product form against. */
function binomial(n: number, k: number): bigint {
  if (k < 0 || k > n) return 0n;
  let result = 1n;
  for (let i = 1; i <= k; i += 1) result = (result * BigInt(n - k + i)) / BigInt(i);
  return result;
}
function exactPassAtK(n: number, c: number, k: number): number {
  const scale = 10n ** 30n;
  const ratio = (binomial(n - c, k) * scale) / binomial(n, k);
  return 1 - Number(ratio) / 1e30;
}

describe('passAtK', () => {
  it('is c/n for k = 1', () => {
    expect(passAtK(10, 3, 1)).toBeCloseTo(0.3, 12);
    expect(passAtK(1, 1, 1)).toBe(1);
    expect(passAtK(1, 0, 1)).toBe(0);
  });

  it('matches the exact binomial form, also where the binomials overflow doubles', () => {
    for (const [n, c, k] of [
      [20, 5, 10],
      [200, 13, 100],
      [200, 1, 10],
      [1000, 7, 100],
      [15, 0, 10],
    ] as const) {
      expect(passAtK(n, c, k)).toBeCloseTo(exactPassAtK(n, c, k), 10);
    }
    // C(1000, 100) is about 6e139: the naive ratio is NaN/Infinity territory, the product stays finite.
    expect(Number.isFinite(passAtK(1000, 7, 100))).toBe(true);
  });

  it('is 1 when fewer than k samples failed', () => {
    expect(passAtK(10, 5, 6)).toBe(1);
    expect(passAtK(100, 100, 100)).toBe(1);
  });

  it('refuses k > n and nonsense counts', () => {
    expect(() => passAtK(5, 1, 10)).toThrow(/at least 10 samples/);
    expect(() => passAtK(5, 6, 1)).toThrow(RangeError);
    expect(() => passAtK(5, 1, 0)).toThrow(RangeError);
  });
});

describe('scorePassAtK', () => {
  it('reports only the k every problem supports, with per-problem values', () => {
    const summary = scorePassAtK([
      { taskId: 'a', n: 10, c: 10 },
      { taskId: 'b', n: 12, c: 0 },
    ]);
    expect(Object.keys(summary.passAtK)).toEqual(['pass@1', 'pass@10']);
    expect(summary.passAtK['pass@1']).toBeCloseTo(0.5, 12);
    expect(summary.passAtK['pass@10']).toBeCloseTo(0.5, 12);
    expect(summary.omitted).toEqual([{ k: 100, reason: 'some problem has only 10 scored samples' }]);
    expect(summary.problems[1]).toEqual({ taskId: 'b', n: 12, c: 0, passAtK: { 'pass@1': 0, 'pass@10': 0 } });
  });

  it('greedy runs (n = 1) give pass@1 only', () => {
    const summary = scorePassAtK([
      { taskId: 'a', n: 1, c: 1 },
      { taskId: 'b', n: 1, c: 0 },
      { taskId: 'c', n: 1, c: 1 },
    ]);
    expect(summary.passAtK).toEqual({ 'pass@1': 2 / 3 });
  });
});
