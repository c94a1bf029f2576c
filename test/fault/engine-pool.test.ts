import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCli } from '../support/spawn-cli.js';
import { checkRecordFile, childPids, comparableResults, completeLines, HUMANEVAL_FILE, waitUntil, withoutTiming, writeFaultDataset } from './harness.js';

/**
 * --devices cpu,cpu[,cpu]: several real engine processes on the CPU (deterministic there by default), the stages'
 * fixed requests taken from one queue by whichever engine is free. The records must equal one engine's, and an
 * engine killed with kill -9 in mid-run has its request redone by the others while the run completes.
 */
describe('several engine processes in one run (--devices)', () => {
  let root: string;
  let dataset: string;
  let reference: string;
  const ROWS = 240;
  const command = (dir: string, devices?: string) => [
    'run',
    '--preset',
    'smoke',
    '--model',
    'preset:tiny-starcoder2',
    '--dataset',
    dataset,
    '--text-field',
    'text',
    '--rows',
    String(ROWS),
    '--batch-size',
    '1',
    '--tasks',
    'perplexity,humaneval',
    '--stages',
    'perplexity,generate',
    '--humaneval',
    HUMANEVAL_FILE,
    '--limit',
    '6',
    '--n',
    '2',
    '--temperature',
    '0.8',
    '--max-new-tokens',
    '24',
    '--run-dir',
    dir,
    ...(devices ? ['--devices', devices] : []),
  ];
  const records = async (dir: string, stage: string) => {
    const check = await checkRecordFile(join(dir, 'records', `${stage}.jsonl`));
    expect(check.duplicates, stage).toEqual([]);
    expect(check.corruptLines, stage).toEqual([]);
    return new Map([...check.records].map(([key, record]) => [key, withoutTiming(record)]));
  };
  const ok = async (args: string[]) => {
    const result = await startCli(args).done;
    expect(result.code, result.stderr).toBe(0);
    return result;
  };

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'evalpipe-engines-'));
    dataset = join(root, 'texts.jsonl');
    await writeFaultDataset(dataset, ROWS);
    reference = join(root, 'one');
    await ok(command(reference));
  }, 900_000); // an upper bound for a saturated 2-core machine, not an expected duration
  afterAll(async () => {
    if (root) await rm(root, { recursive: true, force: true });
  });

  it('two and three engines record what one engine records', async () => {
    for (const devices of ['cpu,cpu', 'cpu,cpu,cpu']) {
      const dir = join(root, devices.replaceAll(',', '-'));
      const result = await ok(command(dir, devices));
      expect(result.stderr).toContain(`starting ${devices.split(',').length} engines`);
      const served = /requests per engine: (.*)/.exec(result.stderr)?.[1] ?? '';
      expect(served.split(', ')).toHaveLength(devices.split(',').length);
      for (const stage of ['perplexity', 'generate']) expect(await records(dir, stage), `${devices} ${stage}`).toEqual(await records(reference, stage));
      const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8'));
      expect(manifest.engines).toEqual({ devices: devices.split(',') });
      expect(manifest.config_hash).toBe(JSON.parse(await readFile(join(reference, 'manifest.json'), 'utf8')).config_hash);
    }
  }, 1_200_000); // an upper bound for a saturated 2-core machine, not an expected duration

  it('kill -9 of one engine in mid-run: its request goes back to the queue, the others finish the run', async () => {
    const dir = join(root, 'killed');
    const file = join(dir, 'records', 'perplexity.jsonl');
    const run = startCli(command(dir, 'cpu,cpu,cpu'));
    const landed = await waitUntil(() => completeLines(file) >= 40, { timeoutMs: 600_000, done: run.done });
    expect(landed).toBe(true);
    const engines = childPids(run.child.pid!);
    expect(engines).toHaveLength(3);
    process.kill(engines[1]!, 'SIGKILL');
    const result = await run.done;
    expect(result.code, result.stderr).toBe(0);
    expect(completeLines(file)).toBeGreaterThan(40);
    expect(result.stderr).toMatch(/engines: the engine on cpu#\d died during (score|generate) .*its request goes to another of the 2 left/);
    expect(result.stderr).toMatch(/requests per engine: .*\(died\)/);
    for (const stage of ['perplexity', 'generate']) expect(await records(dir, stage), stage).toEqual(await records(reference, stage));
  }, 1_200_000); // an upper bound for a saturated 2-core machine, not an expected duration

  it('--devices: bad values are one line and exit 2', async () => {
    for (const [value, message] of [
      ['cpu,0', /mixes cpu and GPUs/],
      ['x', /"x" is not a GPU index or cpu/],
      ['0,1', /names GPUs, but --device is cpu/],
    ] as const) {
      const result = await startCli(command(join(root, `bad-${value}`), value)).done;
      expect(result.code, value).toBe(2);
      expect(result.stderr).toMatch(message);
    }
    // results.json of a scored run: the same as one engine's, apart from where and when
    const perplexityOnly = (dir: string, devices?: string) =>
      command(dir, devices)
        .map((arg) => (arg === 'perplexity,humaneval' ? 'perplexity' : arg))
        .filter((arg, index, all) => arg !== '--stages' && all[index - 1] !== '--stages');
    await ok(perplexityOnly(join(root, 'scored-one')));
    await ok(perplexityOnly(join(root, 'scored-two'), 'cpu,cpu'));
    const results = async (dir: string) => comparableResults(JSON.parse(await readFile(join(root, dir, 'results.json'), 'utf8')));
    expect(await results('scored-two')).toEqual(await results('scored-one'));
  }, 1_200_000); // an upper bound for a saturated 2-core machine, not an expected duration
});
