import { describe, expect, it } from 'vitest';
import { passAtK, passAtKEstimate } from '../tasks/humaneval/pass-at-k.js';
import { bitsPerByteEstimate, meanEstimate, perplexityEstimate, ratioEstimate } from './statistics.js';

function choose(n: number, k: number): number {
  let result = 1;
  for (let i = 0; i < k; i += 1) result = (result * (n - i)) / (i + 1);
  return result;
}

describe('passAtK', () => {
  it('matches 1 - C(n-c,k)/C(n,k) computed directly', () => {
    for (const [n, c, k] of [
      [10, 3, 1],
      [10, 3, 5],
      [20, 0, 10],
      [20, 20, 1],
      [200, 37, 10],
      [5, 4, 2],
    ] as const) {
      const direct = n - c < k ? 1 : 1 - choose(n - c, k) / choose(n, k);
      expect(passAtK(n, c, k)).toBeCloseTo(direct, 10);
    }
    expect(passAtK(10, 3, 1)).toBeCloseTo(0.3, 12);
  });

  it('refuses k above the samples (the caller reports only k ≤ n)', () => {
    expect(() => passAtK(1, 1, 10)).toThrow(RangeError);
  });
});

describe('passAtKEstimate', () => {
  it('gives the binomial standard error with one sample per problem', () => {
    const problems = [1, 1, 0, 1, 0, 0, 0, 1, 1, 0].map((c) => ({ n: 1, c }));
    const estimate = passAtKEstimate(problems, 1);
    expect(estimate.value).toBeCloseTo(0.5, 12);
    expect(estimate.n).toBe(10);
    // sample variance of 0/1 values with p = .5 over 10: 10/36 ... se = sqrt(p(1-p) * n/(n-1) / n)
    expect(estimate.se).toBeCloseTo(Math.sqrt((0.25 * 10) / 9 / 10), 12);
  });

  it('has no standard error for a single problem', () => {
    expect(passAtKEstimate([{ n: 5, c: 2 }], 1)).toEqual({ value: 0.4, se: null, n: 1 });
  });
});

describe('ratio and perplexity estimates', () => {
  it('equal rows give zero standard error and the exact perplexity', () => {
    const rows = Array.from({ length: 5 }, () => ({ nll_sum: 20, n_scored_tokens: 10, n_bytes: 40 }));
    const ppl = perplexityEstimate(rows);
    expect(ppl.value).toBeCloseTo(Math.exp(2), 12);
    expect(ppl.se).toBeCloseTo(0, 12);
    expect(bitsPerByteEstimate(rows).value).toBeCloseTo(20 / (Math.LN2 * 40), 12);
  });

  it('delta-method s.e. agrees with a bootstrap over rows', () => {
    let seed = 7;
    const random = (): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const units = Array.from({ length: 200 }, () => {
      const b = 20 + Math.floor(random() * 200);
      return { a: b * (1 + random()), b };
    });
    const estimate = ratioEstimate(units);
    const replicates: number[] = [];
    for (let r = 0; r < 2000; r += 1) {
      const sample = Array.from({ length: units.length }, () => units[Math.floor(random() * units.length)]!);
      replicates.push(ratioEstimate(sample).value);
    }
    const bootstrap = meanEstimate(replicates);
    const bootstrapSd = bootstrap.se! * Math.sqrt(replicates.length);
    expect(estimate.se).not.toBeNull();
    expect(Math.abs(estimate.se! - bootstrapSd) / bootstrapSd).toBeLessThan(0.15);
  });
});
