import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  PERPLEXITY_ONLY,
  checkRecordFile,
  childPids,
  comparableResults,
  completeLines,
  faultCommand,
  startCli,
  waitUntil,
  withoutTiming,
  perplexityReference,
  type FaultCommandConfig,
} from './harness.js';

describe('the engine process killed in mid-stage', () => {
  let root: string;
  let config: FaultCommandConfig;
  let reference: string;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'evalpipe-fault-engine-'));
    ({ config, reference } = await perplexityReference(root));
  }, 900_000); // an upper bound for a saturated 2-core machine, not an expected duration
  afterAll(async () => {
    if (root) await rm(root, { recursive: true, force: true });
  });

  it('fails with the engine_dead error (one clear line naming the signal) and the same command resumes', async () => {
    const runDir = join(root, 'run');
    const file = join(runDir, 'records', 'perplexity.jsonl');
    const run = startCli(faultCommand(runDir, config, PERPLEXITY_ONLY));
    await waitUntil(() => completeLines(file) >= 60, { timeoutMs: 600_000, done: run.exited });
    const engines = childPids(run.child.pid!);
    expect(engines).toHaveLength(1);
    process.kill(engines[0]!, 'SIGKILL');
    const failed = await run.exited;
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain('evalpipe: the engine process was killed by SIGKILL');
    expect(failed.stderr).toContain('finished work is saved; run the same command again to resume');
    const partial = await checkRecordFile(file);
    expect(partial.completeLines).toBeGreaterThanOrEqual(60);
    expect(partial.completeLines).toBeLessThan(config.rows);
    expect(partial.corruptLines).toEqual([]);
    expect(partial.duplicates).toEqual([]);

    const resumed = await startCli(faultCommand(runDir, config, PERPLEXITY_ONLY)).exited;
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toContain('resuming run');
    const got = await checkRecordFile(file);
    const want = await checkRecordFile(join(reference, 'records', 'perplexity.jsonl'));
    expect(got.completeLines).toBe(config.rows);
    expect(got.duplicates).toEqual([]);
    for (const [key, record] of want.records) expect(withoutTiming(got.records.get(key)!), key).toEqual(withoutTiming(record));
    const results = (dir: string) => readFile(join(dir, 'results.json'), 'utf8').then((text) => comparableResults(JSON.parse(text)));
    expect(await results(runDir)).toEqual(await results(reference));
  }, 900_000); // an upper bound for a saturated 2-core machine, not an expected duration
});
