import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { HUMANEVAL_FILE, runCli, startCli, type CliResult } from '../support/spawn-cli.js';

/** Start the CLI, send `signal` once `ready()` says so (stderr shows a line, a record is on disk), and wait for it to exit. */
async function interruptWhen(args: string[], when: RegExp | (() => Promise<boolean>), signal: NodeJS.Signals): Promise<CliResult> {
  const run = startCli(args);
  let stderr = '';
  run.child.stderr!.on('data', (chunk: Buffer | string) => (stderr += String(chunk)));
  let exited = false;
  void run.done.then(() => (exited = true));
  const ready = typeof when === 'function' ? when : async () => when.test(stderr);
  while (!exited && !(await ready())) await delay(20);
  expect(exited, `the command finished before ${when}: ${stderr.slice(-400)}`).toBe(false);
  run.child.kill(signal);
  return run.done;
}

/** The last non-empty stderr line, and whether anything looks like a traceback or an internal error. */
function tail(result: CliResult): { last: string; noise: boolean } {
  const lines = result.stderr.trimEnd().split('\n');
  return { last: lines.at(-1) ?? '', noise: /Traceback|internal error|^\s+at /m.test(result.stderr) };
}

describe('signals: one line, the shell exit status, finished work kept', () => {
  it('Ctrl-C (SIGINT) in mid-generation exits 130 with one line and no traceback, and the same command resumes', async () => {
    const runDir = join(await mkdtemp(join(tmpdir(), 'evalpipe-interrupt-')), 'run');
    const args = [
      'run',
      '--preset',
      'smoke',
      '--tasks',
      'humaneval',
      '--humaneval',
      HUMANEVAL_FILE,
      '--limit',
      '60',
      '--max-new-tokens',
      '128',
      '--batch-size',
      '1',
      '--stages',
      'generate',
      '--run-dir',
      runDir,
    ];
    const records = join(runDir, 'records', 'generate.jsonl');
    const someGenerated = async () => (await readFile(records, 'utf8').catch(() => '')).includes('\n');
    const result = await interruptWhen(args, someGenerated, 'SIGINT');
    expect(result.code, result.stderr).toBe(130);
    const { last, noise } = tail(result);
    expect(last).toBe('evalpipe: stopped by SIGINT — finished work is saved; run the same command again to resume');
    expect(noise, result.stderr).toBe(false);
    const kept = (await readFile(join(runDir, 'records', 'generate.jsonl'), 'utf8')).split('\n').filter(Boolean).length;
    expect(kept).toBeGreaterThan(0);
    const resumed = await runCli(args);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect((await readFile(join(runDir, 'records', 'generate.jsonl'), 'utf8')).split('\n').filter(Boolean)).toHaveLength(60);
  });

  it('SIGTERM during execution exits 143 with one line', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'evalpipe-interrupt-exec-'));
    const samples = join(dir, 'samples.jsonl');
    const sleeper = '    import time\n    time.sleep(30)\n';
    await writeFile(samples, `${Array.from({ length: 4 }, (_, i) => JSON.stringify({ task_id: `HumanEval/${i}`, completion: sleeper })).join('\n')}\n`);
    const result = await interruptWhen(
      ['execute', '--samples', samples, '--humaneval', HUMANEVAL_FILE, '--timeout', '60', '-o', join(dir, 'out.json')],
      /execute: /,
      'SIGTERM',
    );
    expect(result.code, result.stderr).toBe(143);
    const { last, noise } = tail(result);
    expect(last).toBe('evalpipe: stopped by SIGTERM — finished work is saved; run the same command again to resume');
    expect(noise, result.stderr).toBe(false);
  });
});
