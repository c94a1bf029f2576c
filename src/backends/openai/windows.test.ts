import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../util/package-root.js';
import { planLmEvalWindows, planWindows } from './windows.js';

/** Every (n, max_length, stride) case up to these bounds, and a few long ones. */
function cases(): [number, number, number][] {
  const out: [number, number, number][] = [];
  for (let n = 0; n <= 40; n += 1) {
    for (let maxLength = 2; maxLength <= 12; maxLength += 1) {
      for (let stride = 1; stride <= maxLength; stride += 1) out.push([n, maxLength, stride]);
    }
  }
  for (const [n, maxLength] of [
    [4097, 4096],
    [10_000, 4096],
    [513, 512],
    [1025, 64],
  ] as const) {
    for (const stride of [1, 7, maxLength >> 1, maxLength - 1, maxLength]) out.push([n, maxLength, stride]);
  }
  return out;
}

/** The same plans from cuda/evalpipe_engine/scoring.py, through the project's Python (.venv/bin/python). */
function pythonPlans(input: [number, number, number][]): { evalpipe: number[][][]; lmEval: number[][][] } {
  const root = packageRoot();
  const script = [
    'import json, sys',
    'from evalpipe_engine.scoring import plan_windows, plan_lm_eval_windows',
    'cases = json.load(sys.stdin)',
    'print(json.dumps({"evalpipe": [plan_windows(n, m, s) for n, m, s in cases],',
    '                  "lmEval": [plan_lm_eval_windows(n, m) for n, m, _ in cases]}))',
  ].join('\n');
  const output = execFileSync(join(root, '.venv', 'bin', 'python'), ['-c', script], {
    input: JSON.stringify(input),
    env: { ...process.env, PYTHONPATH: join(root, 'cuda') },
    maxBuffer: 256 * 1024 * 1024,
    encoding: 'utf8',
  });
  return JSON.parse(output) as { evalpipe: number[][][]; lmEval: number[][][] };
}

const triples = (windows: { begin: number; end: number; firstScored: number }[]): number[][] => windows.map((w) => [w.begin, w.end, w.firstScored]);

describe('window plans: the TypeScript port equals the engine (scoring.py)', () => {
  const all = cases();
  const python = pythonPlans(all);

  it(`plan_windows: ${all.length} (n, max_length, stride) cases`, () => {
    const mismatches = all.filter(([n, m, s], i) => JSON.stringify(triples(planWindows(n, m, s))) !== JSON.stringify(python.evalpipe[i]));
    expect(mismatches).toEqual([]);
  });

  it(`plan_lm_eval_windows: ${all.length} (n, max_length) cases`, () => {
    const mismatches = all.filter(([n, m], i) => JSON.stringify(triples(planLmEvalWindows(n, m))) !== JSON.stringify(python.lmEval[i]));
    expect(mismatches).toEqual([]);
  });

  it('matches the documented examples', () => {
    expect(triples(planWindows(20, 8, 4))).toEqual([
      [0, 8, 1],
      [4, 12, 8],
      [8, 16, 12],
      [12, 20, 16],
    ]);
    expect(triples(planLmEvalWindows(34, 10))).toEqual([
      [0, 11, 1],
      [10, 21, 11],
      [20, 31, 21],
      [24, 35, 31],
    ]);
  });
});
