import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { enginePythonCommand } from '../backends/engine/python-command.js';
import { exactSum } from './exact-sum.js';

/** A seeded generator of awkward doubles: wide exponents, cancellations, repeated tenths. */
function awkwardValues(seed: number, count: number): number[] {
  let state = seed >>> 0;
  const next = (): number => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
  return Array.from({ length: count }, () => {
    const pick = next();
    if (pick < 0.2) return 0.1;
    if (pick < 0.3) return (next() < 0.5 ? -1 : 1) * 1e16;
    return (next() - 0.5) * 10 ** Math.floor(next() * 40 - 20);
  });
}

describe('exactSum', () => {
  it('is the correctly rounded sum: equal to Python math.fsum on awkward inputs', () => {
    const cases = Array.from({ length: 60 }, (_, i) => awkwardValues(i + 1, 1 + ((i * 7) % 90)));
    const python = enginePythonCommand();
    const script = 'import json, math, sys; print(json.dumps([repr(math.fsum(c)) for c in json.load(sys.stdin)]))';
    const out = execFileSync(python.executable, ['-c', script], { input: JSON.stringify(cases), encoding: 'utf8', timeout: 60_000 });
    const want = (JSON.parse(out) as string[]).map(Number);
    expect(cases.map((values) => exactSum(values))).toEqual(want);
  });

  it('does not depend on the order of the values, where plain addition does', () => {
    const values = awkwardValues(99, 200);
    const reversed = [...values].reverse();
    expect(exactSum(reversed)).toBe(exactSum(values));
    const plain = (xs: number[]) => xs.reduce((sum, x) => sum + x, 0);
    expect(plain(reversed)).not.toBe(plain(values));
  });

  it('handles the classic cases and non-finite values', () => {
    expect(exactSum(Array(10).fill(0.1))).toBe(1);
    expect(exactSum([1e100, 1, -1e100])).toBe(1);
    expect(exactSum([1, 1e-16, 1e-16])).toBe(1.0000000000000002);
    expect(exactSum([])).toBe(0);
    expect(exactSum([1, Number.POSITIVE_INFINITY])).toBe(Number.POSITIVE_INFINITY);
    expect(exactSum([Number.NaN, 1])).toBeNaN();
  });
});
