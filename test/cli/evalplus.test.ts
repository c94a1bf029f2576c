import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, runCli } from '../support/spawn-cli.js';

const FIXTURES = join(REPO_ROOT, 'test', 'fixtures', 'evalplus');
const HUMANEVAL_PLUS = ['--humaneval-plus', join(FIXTURES, 'humanevalplus.jsonl'), '--humaneval', join(FIXTURES, 'humaneval-base.jsonl')];
const MBPP_PLUS = ['--mbpp-plus', join(FIXTURES, 'mbppplus.jsonl')];

const tempDir = () => mkdtemp(join(tmpdir(), 'evalpipe-evalplus-'));

describe('evalplus tasks end to end (tiny model, Docker sandbox)', () => {
  it('run --preset smoke --tasks humaneval-plus,mbpp-plus: results.json has base and plus pass@k for each', async () => {
    const runDir = join(await tempDir(), 'run');
    const result = await runCli([
      'run',
      '--preset',
      'smoke',
      '--tasks',
      'humaneval-plus,mbpp-plus',
      ...HUMANEVAL_PLUS,
      ...MBPP_PLUS,
      '--max-new-tokens',
      '16',
      '--run-dir',
      runDir,
      '--json',
    ]);
    expect(result.code, result.stderr).toBe(0);
    const results = JSON.parse(await readFile(join(runDir, 'results.json'), 'utf8'));
    for (const [task, problems] of [
      ['humaneval-plus', 3],
      ['mbpp-plus', 3],
    ] as const) {
      const section = results[task];
      expect(section.base).toMatchObject({ n_problems: problems, n_samples_per_problem: 1 });
      expect(section.plus).toMatchObject({ n_problems: problems, n_samples_per_problem: 1 });
      expect(Object.keys(section.base.pass_at_k)).toEqual(['pass@1']);
      expect(Object.keys(section.plus.pass_at_k)).toEqual(['pass@1']);
      expect(section.plus.pass_at_k['pass@1']).toBeLessThanOrEqual(section.base.pass_at_k['pass@1']);
      expect(section.time_limits).toEqual({ min_time_limit_s: 1, gt_time_limit_factor: 4, canonical_failures: [] });
    }
    const records = (await readFile(join(runDir, 'records', 'mbpp-plus-calibrate.jsonl'), 'utf8')).trim().split('\n');
    expect(records).toHaveLength(3);
  }, 300_000);

  it('execute --task humaneval-plus / mbpp-plus on given completions: base and plus pass@k', async () => {
    const dir = await tempDir();
    const heSamples = join(dir, 'he.jsonl');
    await writeFile(
      heSamples,
      [
        { task_id: 'HumanEval/0', completion: '    if n < 2:\n        return False\n    return all(n % d for d in range(2, int(n ** 0.5) + 1))\n' },
        { task_id: 'HumanEval/0', completion: '    return all(n % d for d in range(2, n))\n' },
      ]
        .map((line) => JSON.stringify(line))
        .join('\n'),
    );
    const he = await runCli(['execute', heSamples, '--task', 'humaneval-plus', ...HUMANEVAL_PLUS, '--json']);
    expect(he.code, he.stderr).toBe(0);
    expect(JSON.parse(he.stdout)).toMatchObject({ task: 'humaneval-plus', samples: 2, problems: 1, base: { 'pass@1': 1 }, plus: { 'pass@1': 0.5 } });
    const written = JSON.parse(await readFile(`${heSamples}_results.json`, 'utf8'));
    expect(written.samples.map((sample: { base_status: string; plus_status: string }) => [sample.base_status, sample.plus_status])).toEqual([
      ['passed', 'passed'],
      ['passed', 'failed'],
    ]);

    const mbppSamples = join(dir, 'mbpp.jsonl');
    await writeFile(
      mbppSamples,
      [
        { task_id: 'Mbpp/3', completion: 'def is_not_prime(n):\n    return any(n % i == 0 for i in range(2, n))\n' },
        { task_id: 'Mbpp/4', completion: 'import heapq\n\ndef heap_queue_largest(nums, n):\n    return heapq.nlargest(n, nums)\n' },
      ]
        .map((line) => JSON.stringify(line))
        .join('\n'),
    );
    const mbpp = await runCli(['execute', mbppSamples, '--task', 'mbpp-plus', ...MBPP_PLUS, '--json']);
    expect(mbpp.code, mbpp.stderr).toBe(0);
    expect(JSON.parse(mbpp.stdout)).toMatchObject({ task: 'mbpp-plus', samples: 2, problems: 2, base: { 'pass@1': 1 }, plus: { 'pass@1': 0.5 } });
  }, 300_000);
});
