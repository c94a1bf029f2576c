import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadHumanEval, type HumanEvalProblem } from '../../tasks/humaneval/dataset.js';
import { probeDocker, requireSandbox, testHumanEvalPath } from '../../../test/support/docker.js';
import { isolationCheats } from '../../tasks/humaneval/known-wrong.js';
import { cliInProcess } from '../../../test/support/cli-in-process.js';

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
