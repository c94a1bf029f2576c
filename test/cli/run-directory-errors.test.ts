import { existsSync } from 'node:fs';
import { mkdtemp, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../support/spawn-cli.js';

describe('the run directory: file-system errors are one line, failed runs leave nothing behind', () => {
  it('a --run-dir that is a file, or lies under one, is one line naming the path and what to do', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'evalpipe-rundir-'));
    const file = join(dir, 'a-file');
    await writeFile(file, 'not a directory\n');
    for (const runDir of [file, join(file, 'run')]) {
      const result = await runCli(['run', '--preset', 'smoke', '--run-dir', runDir]);
      expect(result.code, result.stderr).toBe(1);
      expect(result.stderr).toMatch(new RegExp(`cannot use ${runDir.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} as the run directory: (ENOTDIR|EEXIST)`));
      expect(result.stderr).toMatch(/a file is in the way of that path/);
      expect(result.stderr).not.toMatch(/internal error|    at /);
    }
  });

  it('a run that fails before writing any record (a model that does not load) leaves no folder in results/', async () => {
    const cwd = await mkdtemp(join(tmpdir(), 'evalpipe-rundir-cwd-'));
    const result = await runCli(['run', '--preset', 'smoke', '--model', join(cwd, 'no-such-model')], { cwd });
    expect(result.code, result.stderr).toBe(1);
    expect(result.stderr).toMatch(/engine load: /);
    const left = existsSync(join(cwd, 'results')) ? await readdir(join(cwd, 'results')) : [];
    expect(left).toEqual([]);
  });
});
