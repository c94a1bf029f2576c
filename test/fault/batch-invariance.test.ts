import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  HUMANEVAL_FILE,
  PERPLEXITY_ONLY,
  checkRecordFile,
  comparableResults,
  completeLines,
  faultCommand,
  startCli,
  waitUntil,
  withoutTiming,
  writeFaultDataset,
  type FaultCommandConfig,
} from './harness.js';

/**
 * Results never depend on how the work was batched or where it was interrupted (issue: results that do not depend
 * on batching). The CPU engine is batch-invariant by default and every stage's requests are fixed by the data, so
 * any --batch-size, and any kill -9 followed by a resume at another batch size, must give the reference's bits.
 */
describe('the same bits whatever --batch-size and wherever a run is killed', () => {
  let root: string;
  let config: FaultCommandConfig;
  let reference: string;

  const records = async (dir: string, stage: string) => {
    const check = await checkRecordFile(join(dir, 'records', `${stage}.jsonl`));
    expect(check.duplicates).toEqual([]);
    expect(check.corruptLines).toEqual([]);
    return new Map([...check.records].map(([key, record]) => [key, withoutTiming(record)]));
  };
  const results = async (dir: string) => comparableResults(JSON.parse(await readFile(join(dir, 'results.json'), 'utf8')));
  const run = async (args: string[]) => {
    const result = await startCli(args).exited;
    expect(result.code, result.stderr).toBe(0);
    return result;
  };

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'evalpipe-batching-'));
    config = { dataset: join(root, 'texts.jsonl'), rows: 60, humanevalLimit: 16, samples: 1 };
    await writeFaultDataset(config.dataset, config.rows);
    reference = join(root, 'reference');
    await run(faultCommand(reference, config, PERPLEXITY_ONLY, 1));
  }, 1_200_000); // an upper bound for a saturated 2-core machine, not an expected duration
  afterAll(async () => {
    if (root) await rm(root, { recursive: true, force: true });
  });

  it('--batch-size 1, 3 and 64 score every row to the same bits, and results.json is identical', async () => {
    const want = await records(reference, 'perplexity');
    expect(want.size).toBe(config.rows);
    for (const size of [3, 64]) {
      const dir = join(root, `batch-${size}`);
      await run(faultCommand(dir, config, PERPLEXITY_ONLY, size));
      expect(await records(dir, 'perplexity'), `--batch-size ${size}`).toEqual(want);
      expect(await results(dir), `--batch-size ${size}`).toEqual(await results(reference));
    }
    // --batch-size is not part of the run's identity: another size on the same directory resumes it (nothing to do)
    const again = await run(faultCommand(reference, config, PERPLEXITY_ONLY, 7));
    expect(again.stderr).toContain('resuming run');
    expect(again.stderr).not.toContain('engine: starting');
  }, 1_200_000); // an upper bound for a saturated 2-core machine, not an expected duration

  it('kill -9 at several points, then resume at another batch size: the same bits', async () => {
    const want = await records(reference, 'perplexity');
    for (const [killAt, before, after] of [
      [4, 3, 5],
      [23, 7, 1],
      [41, 5, 64],
    ] as const) {
      const dir = join(root, `killed-${killAt}`);
      const file = join(dir, 'records', 'perplexity.jsonl');
      const victim = startCli(faultCommand(dir, config, PERPLEXITY_ONLY, before));
      const landed = await waitUntil(() => completeLines(file) >= killAt, { timeoutMs: 120_000, done: victim.exited });
      victim.child.kill('SIGKILL');
      await victim.exited;
      const partial = await checkRecordFile(file);
      if (landed) expect(partial.completeLines, `killed after ${killAt}`).toBeLessThan(config.rows);
      await run(faultCommand(dir, config, PERPLEXITY_ONLY, after));
      expect(await records(dir, 'perplexity'), `killed after ${killAt} at --batch-size ${before}, resumed at ${after}`).toEqual(want);
      expect(await results(dir)).toEqual(await results(reference));
    }
  }, 1_200_000); // an upper bound for a saturated 2-core machine, not an expected duration

  it('--windowing lm-eval on rows longer than the window: --batch-size 1 and 5, and a kill -9 resumed at another size, give the same bits', async () => {
    const lmEval = (dir: string, size: number) => [...faultCommand(dir, config, PERPLEXITY_ONLY, size), '--windowing', 'lm-eval', '--max-length', '24'];
    const one = join(root, 'lm-eval-1');
    await run(lmEval(one, 1));
    const want = await records(one, 'perplexity');
    expect(want.size).toBe(config.rows);
    expect([...want.values()].filter((record) => Number(record.n_windows) > 1).length).toBeGreaterThan(config.rows / 2);
    const five = join(root, 'lm-eval-5');
    await run(lmEval(five, 5));
    expect(await records(five, 'perplexity')).toEqual(want);
    expect(await results(five)).toEqual(await results(one));
    const killed = join(root, 'lm-eval-killed');
    const file = join(killed, 'records', 'perplexity.jsonl');
    const victim = startCli(lmEval(killed, 3));
    await waitUntil(() => completeLines(file) >= 20, { timeoutMs: 120_000, done: victim.exited });
    victim.child.kill('SIGKILL');
    await victim.exited;
    await run(lmEval(killed, 8));
    expect(await records(killed, 'perplexity'), 'killed after 20 rows at --batch-size 3, resumed at 8').toEqual(want);
    expect(await results(killed)).toEqual(await results(one));
  }, 1_200_000); // an upper bound for a saturated 2-core machine, not an expected duration

  it('greedy generation gives the same completions at --batch-size 1 and 16', async () => {
    const generate = (dir: string, size: number) => [
      ...faultCommand(dir, config, [], size),
      '--tasks',
      'humaneval',
      '--stages',
      'generate',
      '--humaneval',
      HUMANEVAL_FILE,
      '--limit',
      String(config.humanevalLimit),
      '--max-new-tokens',
      '48',
    ]; // prettier-ignore
    const one = join(root, 'generate-1');
    const sixteen = join(root, 'generate-16');
    await run(generate(one, 1));
    await run(generate(sixteen, 16));
    const want = await records(one, 'generate');
    expect(want.size).toBe(config.humanevalLimit);
    expect(await records(sixteen, 'generate')).toEqual(want);
  }, 1_200_000); // an upper bound for a saturated 2-core machine, not an expected duration

  it.each([['0'], ['-3'], ['2.5'], ['100000']])('--batch-size %s: one clear error before any work', async (value) => {
    const dir = join(root, `bad-${value}`);
    const result = await startCli(faultCommand(dir, config, PERPLEXITY_ONLY, 1).map((arg, i, all) => (all[i - 1] === '--batch-size' ? value : arg))).exited;
    expect(result.code).toBe(2); // every bad value exits 2
    expect(result.stderr).toContain(`--batch-size must be a whole number from 1 to 4096, got ${value}`);
    expect(result.stderr).not.toMatch(/internal error|    at /);
  });
});
