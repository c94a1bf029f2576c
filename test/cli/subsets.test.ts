import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { HUMANEVAL_FILE, runCli } from '../support/spawn-cli.js';

describe('subsets are stated, never silent', () => {
  it('--rows beyond the data set: a warning, rows_requested in results.json, and the output says so', async () => {
    const runDir = join(await mkdtemp(join(tmpdir(), 'evalpipe-subset-rows-')), 'run');
    const result = await runCli(['run', '--preset', 'smoke', '--rows', '1000', '--run-dir', runDir]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/builtin:smoke has 24 rows, fewer than the 1000 asked for \(--rows\): all 24 are scored/);
    expect(result.stdout).toMatch(/the data set has 24 of the 1000 rows asked/);
    const results = JSON.parse(await readFile(join(runDir, 'results.json'), 'utf8'));
    expect(results.perplexity).toMatchObject({ rows: 24, rows_requested: 1000 });
  });

  it('--limit: pass@k over the first problems is marked a subset in results.json and the output', async () => {
    const runDir = join(await mkdtemp(join(tmpdir(), 'evalpipe-subset-limit-')), 'run');
    const args = [
      'run',
      '--preset',
      'smoke',
      '--tasks',
      'humaneval',
      '--humaneval',
      HUMANEVAL_FILE,
      '--limit',
      '2',
      '--max-new-tokens',
      '8',
      '--run-dir',
      runDir,
    ];
    const result = await runCli(args);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/pass@k over the first 2 of 164 problems \(--limit\): a subset/);
    expect(result.stdout).toMatch(/a subset: 2 of 164 problems, --limit/);
    const results = JSON.parse(await readFile(join(runDir, 'results.json'), 'utf8'));
    expect(results.humaneval.subset).toEqual({ problems: 2, of: 164, limit: 2, is_subset: true });
  });
});
