import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { multiplEFixtureArgs } from '../support/multipl-e-fixture-args.js';
import { runCli } from '../support/spawn-cli.js';

describe('--tasks multipl-e-js / multipl-e-ts (real CLI, real engine, isolated-vm)', () => {
  it('runs end to end on the tiny model from a local MultiPL-E file, with pass@k in humaneval shape, and resumes with nothing to do', async () => {
    const runDir = join(await mkdtemp(join(tmpdir(), 'evalpipe-mpe-')), 'run');
    const args = ['run', '--preset', 'smoke', ...multiplEFixtureArgs(), '--run-dir', runDir];
    const result = await runCli(args);
    expect(result.stderr).not.toMatch(/internal error/);
    expect(result.code).toBe(0);
    const results = JSON.parse(await readFile(join(runDir, 'results.json'), 'utf8'));
    for (const [task, problems] of [
      ['multipl-e-js', 3],
      ['multipl-e-ts', 2],
    ] as const) {
      expect(results[task]).toMatchObject({ n_problems: problems, n_samples_per_problem: 1, subset: { is_subset: false } });
      expect(results[task].pass_at_k['pass@1']).toBeGreaterThanOrEqual(0);
      expect(results[task].per_problem).toHaveLength(problems);
      expect(results.versions[task]).toBe(1);
    }
    const executed = (await readFile(join(runDir, 'records', 'multipl-e-js-execute.jsonl'), 'utf8')).trim().split('\n');
    expect(executed).toHaveLength(3);
    const again = await runCli([...args, '--json']);
    expect(again.code).toBe(0);
    expect(again.stderr).not.toMatch(/engine: starting/);
  });
});
