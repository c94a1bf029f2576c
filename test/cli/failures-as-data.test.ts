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

  async function problemsFile(dir: string, ids: string[]): Promise<string> {
    const file = join(dir, 'problems.jsonl');
    await writeFile(file, `${ids.map((id) => JSON.stringify(problem(id, 0))).join('\n')}\n`);
    return file;
  }

  async function records(runDir: string, kind: string): Promise<Record<string, unknown>[]> {
    return (await readFile(join(runDir, 'records', `${kind}.jsonl`), 'utf8'))
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
  }

  const FOUR = ['P/0', 'P/1', 'Bad/2', 'P/3'];
  const generateArgs = (humaneval: string, runDir: string) => [
    'run',
    '--preset',
    'smoke',
    '--tasks',
    'humaneval',
    '--humaneval',
    humaneval,
    '--max-new-tokens',
    '8',
    '--batch-size',
    '4',
    '--run-dir',
    runDir,
    '--json',
  ];

  it('a problem the engine fails on is recorded as engine_error and the run finishes; out of memory halves the batch; nothing else changes', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'evalpipe-unit-error-'));
    const humaneval = await problemsFile(dir, FOUR);
    const faults = { EVALPIPE_ENGINE_FAULTS: JSON.stringify({ generate_keys: ['Bad/2'], oom_above: 2 }) };
    const [faulty, clean] = await Promise.all([
      runCli(generateArgs(humaneval, join(dir, 'faulty')), { env: faults }),
      runCli(generateArgs(humaneval, join(dir, 'clean'))),
    ]);
    expect(faulty.code, faulty.stderr).toBe(0);
    expect(clean.code, clean.stderr).toBe(0);
    expect(faulty.stderr).toMatch(/injected out of memory at 4 rows.*decoding P\/0's group 2 samples at a time/);
    expect(faulty.stderr).toMatch(/Bad\/2 failed in the engine .*injected fault for prompt Bad\/2.*recorded as engine_error/);
    expect(faulty.stderr).toMatch(/1 samples failed as engine_error/);
    const results = JSON.parse(await readFile(join(dir, 'faulty', 'results.json'), 'utf8'));
    expect(results.humaneval.n_problems).toBe(4);
    expect(results.humaneval.status_counts.engine_error).toBe(1);
    const faultyRecords = await records(join(dir, 'faulty'), 'generate');
    expect(faultyRecords.find((record) => record.task_id === 'Bad/2')).toMatchObject({
      finish_reason: 'engine_error',
      completion: '',
      error: expect.stringMatching(/injected fault/),
    });
    const completions = (rows: Record<string, unknown>[]) =>
      Object.fromEntries(rows.filter((record) => record.task_id !== 'Bad/2').map((record) => [record.task_id, record.completion]));
    // The batch-invariant CPU engine: the problems that did run give what they give in a run with no faults.
    expect(completions(faultyRecords)).toEqual(completions(await records(join(dir, 'clean'), 'generate')));
    const executed = await records(join(dir, 'faulty'), 'execute');
    expect(executed.find((record) => record.task_id === 'Bad/2')).toMatchObject({ status: 'engine_error', passed: false });
  });

  it('a row the engine fails on is left out of perplexity and said so (a subset); the other rows score as without the fault', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'evalpipe-row-error-'));
    const args = (runDir: string) => ['run', '--preset', 'smoke', '--rows', '6', '--batch-size', '4', '--run-dir', runDir, '--json'];
    const faults = { EVALPIPE_ENGINE_FAULTS: JSON.stringify({ score_rows: [3], oom_above: 2 }) };
    const [faulty, clean] = await Promise.all([runCli(args(join(dir, 'faulty')), { env: faults }), runCli(args(join(dir, 'clean')))]);
    expect(faulty.code, faulty.stderr).toBe(0);
    expect(clean.code, clean.stderr).toBe(0);
    expect(faulty.stderr).toMatch(/row 3 failed in the engine .*injected fault for row 3/);
    const bad = JSON.parse(await readFile(join(dir, 'faulty', 'results.json'), 'utf8')).perplexity;
    const good = JSON.parse(await readFile(join(dir, 'clean', 'results.json'), 'utf8')).perplexity;
    expect(bad).toMatchObject({ rows: 5, rows_requested: 6, rows_failed: 1, failed_rows: [{ index: 3, error: expect.stringMatching(/injected fault/) }] });
    const { 'row:3': _dropped, ...others } = good.per_row;
    expect(bad.per_row).toEqual(others);
  });

  it('units failing one after another stop the stage with one line instead of being recorded as failures', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'evalpipe-unit-breaker-'));
    const ids = ['A/0', 'A/1', 'A/2', 'A/3', 'A/4', 'A/5'];
    const humaneval = await problemsFile(dir, ids);
    const result = await runCli(generateArgs(humaneval, join(dir, 'run')), { env: { EVALPIPE_ENGINE_FAULTS: JSON.stringify({ generate_keys: ids }) } });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/generate: 5 units in a row failed in the engine \(last: A\/4: .*injected fault/);
  });
});
