import { cp, mkdtemp, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { realSmokeRun, syntheticRun } from '../../test/support/run-dirs.js';
import { formatRunStatus, readRunStatus } from './run-status.js';

describe('run status', () => {
  let root: string;
  let complete: string;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'evalpipe-status-'));
    complete = join(root, 'complete');
    await realSmokeRun(complete, { 'batch-size': 4 });
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('shows every stage of a finished run as complete', async () => {
    const status = await readRunStatus(complete);
    expect(status.stages.map((stage) => [stage.stage, stage.done, stage.total, stage.complete])).toEqual([
      ['perplexity', 24, 24, true],
      ['score', 1, 1, true],
      ['report', 1, 1, true],
    ]);
    expect(status.complete).toBe(true);
    expect(formatRunStatus(status)).toContain('perplexity  24/24 rows        complete');
  });

  it('counts a killed run without touching its files: torn last record ignored, later stages not started', async () => {
    const partial = join(root, 'partial');
    await cp(complete, partial, { recursive: true });
    await rm(join(partial, 'results.json'));
    await rm(join(partial, 'report.md'));
    await rm(join(partial, 'report.html'));
    const records = join(partial, 'records', 'perplexity.jsonl');
    const lines = (await readFile(records, 'utf8')).split('\n');
    await writeFile(records, `${lines.slice(0, 10).join('\n')}\n${lines[10]!.slice(0, 25)}`);
    const before = (await stat(records)).size;
    const status = await readRunStatus(partial);
    expect(status.stages.map((stage) => [stage.stage, stage.done, stage.complete])).toEqual([
      ['perplexity', 10, false],
      ['score', 0, false],
      ['report', 0, false],
    ]);
    expect((await stat(records)).size).toBe(before);
    const text = formatRunStatus(status);
    expect(text).toContain('perplexity  10/24 rows        in progress 41%');
    expect(text).toContain('run incomplete: the same `evalpipe run` command resumes it');
  });

  it('counts HumanEval samples against --limit × n, with execution status counts', async () => {
    const dir = await syntheticRun(join(root, 'humaneval'), {
      quant: 'bf16',
      attn: 'sdpa',
      humanevalRows: 164,
      execute: { 'HumanEval/0': [true, false], 'HumanEval/1': [false, false], 'HumanEval/2': [true, true] },
    });
    const status = await readRunStatus(dir);
    expect(status.stages.map((stage) => [stage.stage, stage.done, stage.total, stage.complete])).toEqual([
      ['generate', 0, 6, false],
      ['execute', 6, 6, true],
      ['score', 1, 1, true],
      ['report', 0, 1, false],
    ]);
    expect(status.stages[1]!.detail).toEqual({ passed: 3, failed: 3 });
    expect(formatRunStatus(status)).toContain('execute   6/6 samples       complete  (failed 3, passed 3)');
  });

  it('names the file and what to do for a newer schema, a corrupt manifest, or a corrupt record', async () => {
    const newer = join(root, 'newer');
    await cp(complete, newer, { recursive: true });
    const manifest = JSON.parse(await readFile(join(newer, 'manifest.json'), 'utf8'));
    await writeFile(join(newer, 'manifest.json'), JSON.stringify({ ...manifest, schema_version: 99 }));
    await expect(readRunStatus(newer)).rejects.toThrow(`${join(newer, 'manifest.json')} has schema version 99`);

    const corrupt = join(root, 'corrupt');
    await cp(complete, corrupt, { recursive: true });
    await truncate(join(corrupt, 'manifest.json'), 40);
    await expect(readRunStatus(corrupt)).rejects.toThrow(`${join(corrupt, 'manifest.json')} is corrupt (not valid JSON)`);

    const damaged = join(root, 'damaged');
    await cp(complete, damaged, { recursive: true });
    const records = join(damaged, 'records', 'perplexity.jsonl');
    const lines = (await readFile(records, 'utf8')).split('\n');
    lines[3] = '{"v":1,"key":';
    await writeFile(records, lines.join('\n'));
    await expect(readRunStatus(damaged)).rejects.toThrow(`${records} line 4 is corrupt (not a complete record)`);

    await expect(readRunStatus(join(root, 'absent'))).rejects.toThrow('is not a directory');
  });
});
