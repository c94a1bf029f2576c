import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../support/spawn-cli.js';

describe('a record edited by hand is refused everywhere it is read (real CLI)', () => {
  it('run (resume), status, report and leaderboard build name the file and line instead of scoring it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'evalpipe-tamper-'));
    const runDir = join(dir, 'run');
    const command = ['run', '--preset', 'smoke', '--rows', '6', '--run-dir', runDir];
    expect((await runCli(command)).code).toBe(0);
    const file = join(runDir, 'records', 'perplexity.jsonl');
    const lines = (await readFile(file, 'utf8')).split('\n');
    lines[2] = lines[2]!.replace(/"nll_sum":[^,]+/, '"nll_sum":0');
    await writeFile(file, lines.join('\n'));
    const want = `${file} line 3 does not match its checksum: it was edited or damaged`;
    for (const args of [
      command,
      ['status', runDir],
      ['report', runDir, '-o', join(dir, 'report')],
      ['leaderboard', 'build', runDir, '-o', join(dir, 'board.json')],
    ]) {
      const result = await runCli(args);
      expect(result.code, `${args[0]}: ${result.stderr}`).toBe(1);
      expect(result.stderr, args[0]).toContain(want);
      expect(result.stderr).not.toMatch(/internal error|    at /);
    }
  }, 1_200_000); // an upper bound for a saturated 2-core machine, not an expected duration
});
