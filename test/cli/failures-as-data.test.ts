import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../support/spawn-cli.js';

/** A problem in the HumanEval format; `padding` lines of docstring make its prompt as long as wanted. */
function problem(taskId: string, padding: number): Record<string, string> {
  const doc = Array.from({ length: padding }, (_, i) => `    line ${i} of a very long description of what add does\n`).join('');
  return {
    task_id: taskId,
    prompt: `def add(a, b):\n    """Add two numbers.\n${doc}    """\n`,
    entry_point: 'add',
    canonical_solution: '    return a + b\n',
    test: 'def check(candidate):\n    assert candidate(1, 2) == 3\n',
  };
}

describe('one unit cannot stop a run', () => {
  it("a prompt longer than the model's context is that sample's failure (prompt_too_long), and the run finishes", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'evalpipe-too-long-'));
    const humaneval = join(dir, 'problems.jsonl');
    await writeFile(humaneval, `${[problem('Long/0', 200), problem('Short/1', 0)].map((row) => JSON.stringify(row)).join('\n')}\n`);
    const runDir = join(dir, 'run');
    const result = await runCli([
      'run',
      '--preset',
      'smoke',
      '--tasks',
      'humaneval',
      '--humaneval',
      humaneval,
      '--max-new-tokens',
      '8',
      '--run-dir',
      runDir,
      '--json',
    ]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/1 samples failed as prompt_too_long/);
    const results = JSON.parse(await readFile(join(runDir, 'results.json'), 'utf8'));
    expect(results.humaneval.n_problems).toBe(2);
    expect(results.humaneval.status_counts.prompt_too_long).toBe(1);
    expect(results.humaneval.per_problem[0]).toMatchObject({ task_id: 'Long/0', n: 1, c: 0 });
    const generated = (await readFile(join(runDir, 'records', 'generate.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(generated.find((record) => record.task_id === 'Long/0')).toMatchObject({ finish_reason: 'prompt_too_long', completion: '' });
    expect(generated.find((record) => record.task_id === 'Short/1')?.finish_reason).not.toBe('prompt_too_long');
  });
});
