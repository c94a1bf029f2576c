import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PERPLEXITY_ONLY, checkRecordFile, completeLines, faultCommand, startCli, waitUntil, writeFaultDataset, type FaultCommandConfig } from './harness.js';

/** One writer per run directory (run.lock), real CLI processes. */
describe('two evalpipe processes on one run directory', () => {
  let root: string;
  let config: FaultCommandConfig;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'evalpipe-lock-'));
    config = { dataset: join(root, 'texts.jsonl'), rows: 120, humanevalLimit: 1, samples: 1 };
    await writeFaultDataset(config.dataset, config.rows);
  });
  afterAll(async () => {
    if (root) await rm(root, { recursive: true, force: true });
  });

  it('the second gets one clear line naming the holder; status reads meanwhile; nothing is done twice', async () => {
    const dir = join(root, 'shared');
    const first = startCli(faultCommand(dir, config, PERPLEXITY_ONLY));
    const file = join(dir, 'records', 'perplexity.jsonl');
    await waitUntil(() => completeLines(file) >= 2, { timeoutMs: 120_000, done: first.exited });
    const second = await startCli(faultCommand(dir, config, PERPLEXITY_ONLY)).exited;
    expect(second.code).toBe(1);
    expect(second.stderr).toContain(`is in use by evalpipe process ${first.child.pid} on ${hostname()}`);
    expect(
      second.stderr
        .trim()
        .split('\n')
        .filter((line) => line.startsWith('evalpipe:')),
    ).toHaveLength(1);
    const status = await startCli(['status', dir]).exited;
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toContain('perplexity');
    const done = await first.exited;
    expect(done.code, done.stderr).toBe(0);
    const records = await checkRecordFile(file);
    expect(records.completeLines).toBe(config.rows);
    expect(records.duplicates).toEqual([]);
    expect(existsSync(join(dir, 'run.lock'))).toBe(false);
  }, 1_200_000); // an upper bound for a saturated 2-core machine, not an expected duration

  it('a lock left by a process that is gone is taken over; one from another host is refused with what to do', async () => {
    const dead = spawnSync(process.execPath, ['-e', '0']).pid;
    const stale = join(root, 'stale');
    await mkdir(stale, { recursive: true });
    await writeFile(join(stale, 'run.lock'), JSON.stringify({ pid: dead, host: hostname(), process_start: null, acquired_at: '2026-01-01T00:00:00Z' }));
    const resumed = await startCli(faultCommand(stale, { ...config, rows: 4 }, PERPLEXITY_ONLY)).exited;
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toContain(`took over the lock of evalpipe process ${dead}, which is gone`);

    const foreign = join(root, 'foreign');
    await mkdir(foreign, { recursive: true });
    await writeFile(
      join(foreign, 'run.lock'),
      JSON.stringify({ pid: 4242, host: 'other-host.example', process_start: '1', acquired_at: '2026-01-01T00:00:00Z' }),
    );
    const refused = await startCli(faultCommand(foreign, { ...config, rows: 4 }, PERPLEXITY_ONLY)).exited;
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('is in use by evalpipe process 4242 on other-host.example');
    expect(refused.stderr).toContain(`delete ${join(foreign, 'run.lock')}`);
  }, 1_200_000); // an upper bound for a saturated 2-core machine, not an expected duration
});
