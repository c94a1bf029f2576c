import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probeDocker, requireSandbox } from '../../../test/support/docker.js';
import { SandboxPool } from '../../sandbox/sandbox-pool.js';
import { packageRoot } from '../../util/package-root.js';
import { loadHumanEvalPlus } from '../humaneval-plus/dataset.js';
import { loadMbppPlus } from '../mbpp-plus/dataset.js';
import { calibrate, executePlusCandidate, type Calibration } from './execute.js';
import { PER_TEST_TIMEOUT, type PlusProblem, suiteTimeoutMs, timeLimits } from './program.js';
import { plusRecord, plusResults } from './task-factory.js';

const fixtures = join(packageRoot(), 'test', 'fixtures', 'evalplus');
const docker = await probeDocker();
const limits = { minTimeLimitS: 1, gtTimeLimitFactor: 4 };

describe('evalplus time limits', () => {
  it('per test: max(min_time_limit, factor × canonical time); per suite: min(60, Σ) + 1 s', () => {
    expect(timeLimits([0.01, 0.5, 2], 1, 4)).toEqual([1, 2, 8]);
    expect(suiteTimeoutMs([1, 2, 8], 1)).toBe(12_000);
    expect(suiteTimeoutMs(Array(100).fill(1), 1)).toBe(61_000);
  });
});

describe('fixtures load', () => {
  it('HumanEval+: plus from the evalplus test, base from the HumanEval test of the same task', async () => {
    const set = await loadHumanEvalPlus({ source: join(fixtures, 'humanevalplus.jsonl'), baseSource: join(fixtures, 'humaneval-base.jsonl') });
    expect(set.problems.map((problem) => problem.task_id)).toEqual(['HumanEval/0', 'HumanEval/1', 'HumanEval/2']);
    expect(set.problems[0]!.plus.call).toBe('check(is_prime)');
    expect(set.problems[0]!.base.source).toContain('candidate(13) is True');
  });
  it("MBPP+: evalplus's prompt form, the entry point from the test, base from test_list", async () => {
    const set = await loadMbppPlus({ source: join(fixtures, 'mbppplus.jsonl') });
    const first = set.problems[0]!;
    expect(first.task_id).toBe('Mbpp/2');
    expect(first.entry_point).toBe('similar_elements');
    expect(first.prompt).toBe(
      '"""\nWrite a function to find the shared elements from the given two lists, as a sorted tuple.\nassert similar_elements((3, 4, 5, 6),(5, 7, 4, 10)) == (4, 5)\n"""\n',
    );
    expect(set.problems[1]!.base.source.startsWith('import math\n')).toBe(true);
  });
});

describe.skipIf(docker.skip)('evalplus verdicts in the sandbox', () => {
  let pool: SandboxPool;
  let humanevalPlus: PlusProblem[];
  let mbppPlus: PlusProblem[];
  const calibrations = new Map<string, Calibration>();

  beforeAll(async () => {
    await requireSandbox(docker);
    humanevalPlus = (await loadHumanEvalPlus({ source: join(fixtures, 'humanevalplus.jsonl'), baseSource: join(fixtures, 'humaneval-base.jsonl') })).problems;
    mbppPlus = (await loadMbppPlus({ source: join(fixtures, 'mbppplus.jsonl') })).problems;
    pool = await SandboxPool.open({ concurrency: 4 });
    for (const problem of [...humanevalPlus, ...mbppPlus]) calibrations.set(problem.task_id, await calibrate(pool, problem));
  }, 180_000);
  afterAll(async () => {
    await pool?.close();
  });

  const run = (problem: PlusProblem, completion: string) => executePlusCandidate(pool, problem, calibrations.get(problem.task_id)!, completion, limits);

  it('the canonical solutions pass both suites, 100%, and every test call was timed', async () => {
    for (const problem of [...humanevalPlus, ...mbppPlus]) {
      const calibration = calibrations.get(problem.task_id)!;
      expect(calibration.canonical_failure, problem.task_id).toBeNull();
      expect(calibration.plus_times.length, problem.task_id).toBeGreaterThan(calibration.base_times.length - 1);
      expect(calibration.base_times.length, problem.task_id).toBeGreaterThan(0);
      const verdict = await run(problem, problem.canonical_solution);
      expect([verdict.base.status, verdict.plus.status, verdict.passed], `${problem.task_id}: ${verdict.counted.message}`).toEqual(['passed', 'passed', true]);
    }
  }, 120_000);

  it('a candidate right on the base tests only passes base and fails plus (HumanEval+ and MBPP+)', async () => {
    const isPrime = await run(humanevalPlus[0]!, '    return all(n % d for d in range(2, n))\n');
    expect([isPrime.base.status, isPrime.plus.status, isPrime.passed]).toEqual(['passed', 'failed', false]);
    expect(isPrime.plus.exceptionType).toBe('AssertionError');
    const notPrime = await run(mbppPlus[1]!, 'def is_not_prime(n):\n    return any(n % i == 0 for i in range(2, n))\n');
    expect([notPrime.base.status, notPrime.plus.status, notPrime.passed]).toEqual(['passed', 'failed', false]);
    const record = plusRecord({ task_id: 'Mbpp/3', sample_index: 0 }, notPrime);
    expect(record).toMatchObject({ status: 'failed', passed: false, base_passed: true, plus_passed: false });
    const results = plusResults(['Mbpp/3'], 1, [record]);
    expect(results.base.pass_at_k['pass@1']).toBe(1);
    expect(results.plus.pass_at_k['pass@1']).toBe(0);
  }, 60_000);

  it('a wrong answer fails both; a test past its own limit fails as evalplus counts it; floats compare with atol', async () => {
    const wrong = await run(humanevalPlus[2]!, '    return 0\n');
    expect([wrong.base.status, wrong.plus.status]).toEqual(['failed', 'failed']);
    const slow = await run(humanevalPlus[1]!, '    while True:\n        pass\n');
    expect(slow.base.status).toBe('failed');
    expect(slow.base.exceptionType).toBe(PER_TEST_TIMEOUT);
    const close = await run(humanevalPlus[1]!, '    return sum(xs) / len(xs) + 1e-9\n');
    expect(close.passed).toBe(true);
  }, 60_000);
});
