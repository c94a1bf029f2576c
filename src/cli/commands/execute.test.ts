import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadHumanEval, type HumanEvalProblem } from '../../tasks/humaneval/dataset.js';
import { probeDocker, requireSandbox, testHumanEvalPath } from '../../../test/support/docker.js';
import { isolationCheats } from '../../tasks/humaneval/known-wrong.js';
import { cliInProcess } from '../../../test/support/cli-in-process.js';
import { REPO_ROOT, runCli } from '../../../test/support/spawn-cli.js';

const docker = await probeDocker();

const cli = cliInProcess;

describe('evalpipe execute', () => {
  let dir: string;
  let problems: HumanEvalProblem[];
  let humaneval: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'evalpipe-execute-'));
    humaneval = testHumanEvalPath() ?? join(dir, 'HumanEval.jsonl');
    problems = (await loadHumanEval(testHumanEvalPath())).problems;
    if (!testHumanEvalPath()) await writeFile(humaneval, problems.map((problem) => JSON.stringify(problem)).join('\n'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  afterEach(() => {
    delete process.env.DOCKER_HOST;
  });

  async function samplesFile(name: string, lines: string[]): Promise<string> {
    const path = join(dir, name);
    await writeFile(path, `${lines.join('\n')}\n`);
    return path;
  }

  it('names the malformed sample line', async () => {
    const path = await samplesFile('bad.jsonl', [JSON.stringify({ task_id: 'HumanEval/0', completion: '' }), '{"task_id": "HumanEval/1", "completion": 7}']);
    const result = await cli(['execute', '--samples', path, '--humaneval', humaneval]);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      `evalpipe: ${path} line 2: "completion" is not a string — each line must be a JSON object with string fields "task_id" and "completion" (the openai/human-eval samples format)\n`,
    );
  });

  it('refuses a sample for an unknown task_id', async () => {
    const path = await samplesFile('unknown.jsonl', [
      JSON.stringify({ task_id: 'HumanEval/0', completion: '' }),
      JSON.stringify({ task_id: 'MBPP/1', completion: '' }),
    ]);
    const result = await cli(['execute', '--samples', path, '--humaneval', humaneval]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/line 2 names task_id "MBPP\/1", which is not a HumanEval problem/);
  });

  it('Docker down: one clear error, no results written', async () => {
    const path = await samplesFile('down.jsonl', [JSON.stringify({ task_id: 'HumanEval/0', completion: problems[0]!.canonical_solution })]);
    process.env.DOCKER_HOST = 'unix:///nonexistent/evalpipe-docker.sock';
    const output = join(dir, 'down-results.json');
    const result = await cli(['execute', '--samples', path, '--humaneval', humaneval, '-o', output]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^evalpipe: Docker is not running or not installed: .* — start the Docker daemon/);
    expect(existsSync(output)).toBe(false);
  });

  it.skipIf(docker.skip)("takes the samples file as human-eval's positional FILE, and says when the samples cover a subset", async () => {
    await requireSandbox(docker);
    const path = await samplesFile(
      'two.jsonl',
      problems.slice(0, 2).map((problem) => JSON.stringify({ task_id: problem.task_id, completion: problem.canonical_solution })),
    );
    const output = join(dir, 'two-results.json');
    const result = await cli(['execute', path, '--humaneval', humaneval, '-o', output, '--json']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/the samples cover 2 of the 164 problems: pass@k is over those 2 only \(a subset\)/);
    expect(JSON.parse(result.stdout)).toMatchObject({ problems: 2, subset: { problems: 2, of: 164, is_subset: true }, pass_at_k: { 'pass@1': 1 } });
    expect(JSON.parse(await readFile(output, 'utf8')).subset).toEqual({ problems: 2, of: 164, is_subset: true });
    const both = await cli(['execute', path, '--samples', join(dir, 'other.jsonl'), '--humaneval', humaneval]);
    expect(both.stderr).toMatch(/two samples files given/);
    const none = await cli(['execute', '--humaneval', humaneval]);
    expect(none.stderr).toMatch(/no samples file given — name it: evalpipe execute samples.jsonl/);
  });

  it.skipIf(docker.skip)('scores a human-eval samples file: per-sample verdicts and pass@k JSON', async () => {
    await requireSandbox(docker);
    const chosen = problems.slice(0, 12);
    const lines = chosen.flatMap((problem) => [
      JSON.stringify({ task_id: problem.task_id, completion: problem.canonical_solution }),
      JSON.stringify({ task_id: problem.task_id, completion: '    return None\n' }),
    ]);
    const path = await samplesFile('samples.jsonl', lines);
    const output = join(dir, 'results.json');
    const result = await cli(['execute', '--samples', path, '--humaneval', humaneval, '-o', output, '--json']);
    expect(result.code).toBe(0);
    const summary = JSON.parse(result.stdout) as { pass_at_k: Record<string, number>; statuses: Record<string, number> };
    expect(summary.pass_at_k).toEqual({ 'pass@1': 0.5 });
    expect(summary.statuses).toEqual({ passed: 12, failed: 12 });
    const record = JSON.parse(await readFile(output, 'utf8')) as {
      schema_version: number;
      samples: { line: number; task_id: string; passed: boolean; result: string; status: string }[];
      problems: { task_id: string; n: number; c: number }[];
      pass_at_k_omitted: { k: number }[];
    };
    expect(record.schema_version).toBe(1);
    expect(record.samples).toHaveLength(24);
    expect(record.samples[0]).toMatchObject({ line: 1, task_id: 'HumanEval/0', passed: true, result: 'passed', status: 'passed' });
    expect(record.samples[1]).toMatchObject({ line: 2, task_id: 'HumanEval/0', passed: false, result: 'failed: AssertionError', status: 'failed' });
    expect(record.problems.every((problem) => problem.n === 2 && problem.c === 1)).toBe(true);
    expect(record.pass_at_k_omitted.map((entry) => entry.k)).toEqual([10, 100]);
  });

  it.skipIf(docker.skip)('--verdicts isolated: the always-equal cheat passes only the default way and is listed as suspect', async () => {
    await requireSandbox(docker);
    const cheat = isolationCheats().find((entry) => entry.kind === 'always-equal')!;
    const path = await samplesFile('isolated.jsonl', [
      JSON.stringify({ task_id: 'HumanEval/0', completion: problems[0]!.canonical_solution }),
      JSON.stringify({ task_id: 'HumanEval/0', completion: cheat.completion }),
    ]);
    const output = join(dir, 'isolated-results.json');
    const result = await cli(['execute', '--samples', path, '--humaneval', humaneval, '-o', output, '--json', '--verdicts', 'isolated']);
    expect(result.code, result.stderr).toBe(0);
    const summary = JSON.parse(result.stdout) as { pass_at_k: Record<string, number>; suspects: number; not_isolated: string[] };
    expect(summary).toMatchObject({ pass_at_k: { 'pass@1': 0.5 }, suspects: 1, not_isolated: [] });
    const record = JSON.parse(await readFile(output, 'utf8')) as {
      sandbox: { verdicts: string };
      isolation: { suspects: { task_id: string; sample_index: number; default_status: string }[] };
      samples: { passed: boolean; default_status: string; suspect: boolean; isolation: string }[];
    };
    expect(record.sandbox.verdicts).toBe('isolated');
    expect(record.isolation.suspects).toEqual([expect.objectContaining({ task_id: 'HumanEval/0', sample_index: 1, default_status: 'passed' })]);
    expect(record.samples.map((sample) => [sample.passed, sample.default_status, sample.suspect, sample.isolation])).toEqual([
      [true, 'passed', false, 'checked'],
      [false, 'passed', true, 'checked'],
    ]);
  });

  it('--verdicts with an unknown mode: one clear line', async () => {
    const path = await samplesFile('mode.jsonl', [JSON.stringify({ task_id: 'HumanEval/0', completion: '' })]);
    const result = await cli(['execute', '--samples', path, '--humaneval', humaneval, '--verdicts', 'strict']);
    expect(result.code).toBe(2); // every bad value exits 2
    expect(result.stderr).toBe('evalpipe: --verdicts must be one of default, isolated, got "strict" — pass --verdicts default or --verdicts isolated\n');
  });
});

describe('evalpipe execute --task multipl-e-js|multipl-e-ts (the real CLI in its own process, isolated-vm)', () => {
  const fixtures = join(REPO_ROOT, 'test', 'fixtures', 'multipl-e');
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'evalpipe-execute-mpe-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  interface MultiplERecord {
    task: string;
    statuses: Record<string, number>;
    pass_at_k: Record<string, number>;
    isolate: { runtime: string; limits: { timeout_ms: number; memory_mb: number } };
    problems: { task_id: string; n: number; c: number }[];
    samples: {
      line: number;
      task_id: string;
      sample_index: number;
      passed: boolean;
      status: string;
      multipl_e_status: string;
      exception_type: string | null;
    }[];
  }

  it('JavaScript completions: each verdict (pass, wrong answer, infinite loop) and pass@k, in the result JSON', async () => {
    const output = join(dir, 'js-results.json');
    const args = ['execute', '--task', 'multipl-e-js', '--samples', join(fixtures, 'samples-js.jsonl')];
    const result = await runCli([...args, '--multipl-e-js', join(fixtures, 'humaneval-js.jsonl'), '--timeout', '2', '-o', output, '--json']);
    expect(result.code, result.stderr).toBe(0);
    const summary = JSON.parse(result.stdout) as { pass_at_k: Record<string, number>; statuses: Record<string, number>; problems: number };
    // add_two 1 of 2, reverse_words 1 of 1, evens 1 of 2
    expect(summary).toMatchObject({ problems: 3, statuses: { passed: 3, failed: 1, timeout: 1 } });
    expect(summary.pass_at_k['pass@1']).toBeCloseTo((0.5 + 1 + 0.5) / 3, 10);
    const record = JSON.parse(await readFile(output, 'utf8')) as MultiplERecord;
    expect(record).toMatchObject({ task: 'multipl-e-js', isolate: { runtime: 'isolated-vm', limits: { timeout_ms: 2000, memory_mb: 256 } } });
    expect(
      record.samples.map((sample) => [sample.line, sample.task_id, sample.sample_index, sample.status, sample.multipl_e_status, sample.exception_type]),
    ).toEqual([
      [1, 'Fixture_0_add_two', 0, 'passed', 'OK', null],
      [2, 'Fixture_0_add_two', 1, 'failed', 'AssertionError', 'AssertionError'],
      [3, 'Fixture_1_reverse_words', 0, 'passed', 'OK', null],
      [4, 'Fixture_2_evens', 0, 'passed', 'OK', null],
      [5, 'Fixture_2_evens', 1, 'timeout', 'Timeout', null],
    ]);
    expect(record.problems.map((problem) => [problem.task_id, problem.n, problem.c])).toEqual([
      ['Fixture_0_add_two', 2, 1],
      ['Fixture_1_reverse_words', 1, 1],
      ['Fixture_2_evens', 2, 1],
    ]);
    const text = await runCli([...args, '--multipl-e-js', join(fixtures, 'humaneval-js.jsonl'), '--timeout', '2', '-o', output]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toBe(`pass@1 0.6667\n5 samples over 3 problems: passed 3, failed 1, timeout 1\nwrote ${output}\n`);
  });

  it('TypeScript completions: a type error fails the candidate as tsc does, unrun', async () => {
    const output = join(dir, 'ts-results.json');
    const result = await runCli([
      'execute',
      '--task',
      'multipl-e-ts',
      '--samples',
      join(fixtures, 'samples-ts.jsonl'),
      '--multipl-e-ts',
      join(fixtures, 'humaneval-ts.jsonl'),
      '-o',
      output,
      '--json',
    ]);
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ problems: 2, statuses: { passed: 2, failed: 1 }, pass_at_k: { 'pass@1': 0.75 } });
    const record = JSON.parse(await readFile(output, 'utf8')) as MultiplERecord;
    expect(record.samples[1]).toMatchObject({ status: 'failed', exception_type: 'TypeScriptError', multipl_e_status: 'SyntaxError', passed: false });
  });

  it('a sample naming no problem of the file, and a bad limit: one clear line each, exit 1/2', async () => {
    const path = join(dir, 'unknown.jsonl');
    await writeFile(path, `${JSON.stringify({ task_id: 'HumanEval_0_has_close_elements', completion: '' })}\n`);
    const unknown = await runCli(['execute', '--task', 'multipl-e-js', '--samples', path, '--multipl-e-js', join(fixtures, 'humaneval-js.jsonl')]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toBe(
      `evalpipe: ${path} line 1 names task_id "HumanEval_0_has_close_elements", which is not a humaneval-js problem — task_id is the problem's "name", e.g. Fixture_0_add_two, Fixture_1_reverse_words\n`,
    );
    const wrongLanguage = await runCli(['execute', '--task', 'multipl-e-ts', '--samples', path, '--multipl-e-ts', join(fixtures, 'humaneval-js.jsonl')]);
    expect(wrongLanguage.code).toBe(1);
    expect(wrongLanguage.stderr).toMatch(
      /^evalpipe: .*humaneval-js\.jsonl row 0 \(Fixture_0_add_two\) is language "js", not "ts" — pass the humaneval-ts rows to --multipl-e-ts\n$/,
    );
    const badMemory = await runCli(['execute', '--task', 'multipl-e-js', '--samples', path, '--memory-mb', '0.5']);
    expect(badMemory.code).toBe(2);
    expect(badMemory.stderr).toBe('evalpipe: --memory-mb must be a positive whole number, got 0.5 — e.g. --memory-mb 1\n');
  });
});
