import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/spawn-cli.js';

const SWEEP = [
  'sweep',
  '--preset',
  'smoke',
  '--quant',
  'fp32,bf16,int8',
  '--attn',
  'sdpa',
  '--tasks',
  'perplexity,latency',
  '--batches',
  '1,2',
  '--contexts',
  '32,64',
  '--warmup',
  '1',
  '--iters',
  '1',
  '--repeats',
  '1',
];

describe('evalpipe sweep (real engine, tiny model, CPU)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'evalpipe-sweep-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('runs every precision, one run directory each, then one report with the quality and speedup tables; the same command resumes', async () => {
    const first = await runCli([...SWEEP, '--json'], { cwd: dir });
    expect(first.stderr).not.toContain('internal error');
    expect(first.code).toBe(0);
    const summary = JSON.parse(first.stdout.trim().split('\n').pop()!) as {
      runs: { label: string; run_dir: string; status: string }[];
      report: { markdown: string; html: string };
    };
    expect(summary.runs.map((run) => `${run.label}:${run.status}`)).toEqual(['fp32 sdpa:ok', 'bf16 sdpa:ok', 'int8 sdpa:ok']);
    for (const run of summary.runs) expect(existsSync(join(run.run_dir, 'results.json'))).toBe(true);
    const markdown = await readFile(summary.report.markdown, 'utf8');
    expect(markdown).toContain('### Quality cost vs bf16 (perplexity stage, paired by row)');
    expect(markdown).toMatch(/\| trained-tiny-starcoder2 \| int8 \| sdpa \| bf16 sdpa \| 24 \| [+−]\d\.\d{5} ± \d\.\d{5} \|/);
    expect(markdown).toMatch(/### Precision speedup vs bf16: trained-tiny-starcoder2 sdpa attention on /);
    expect(existsSync(summary.report.html)).toBe(true);

    const again = await runCli(SWEEP, { cwd: dir });
    expect(again.code).toBe(0);
    expect(again.stderr.match(/resuming run /g)).toHaveLength(3);
    expect(again.stderr).not.toContain('engine: loading'); // every stage was complete: no engine started
    expect(again.stdout).toContain(`report: ${summary.report.markdown}`);
  });

  it.each([
    // the plural forms went: --quant and --attn take one value or a list in every command
    [['--quants', 'int8'], /Unknown argument: quants/],
    [['--quant', 'int8,int9'], /--quant: unknown value\(s\) int9 — use a comma list of fp32, fp16, bf16, int8, nf4, fp8/],
    [['--quant', 'int8,int8'], /--quant names int8 twice/],
    [['--attn', 'flash,paged'], /--attn: unknown value\(s\) paged/],
    [['--quant', 'bf16,int8', '--run-dir', 'somewhere'], /--run-dir names only one/],
  ])('bad input %j: one clear error before any run starts', async (extra, message) => {
    const cwd = await mkdtemp(join(dir, 'bad-'));
    const result = await runCli(['sweep', '--preset', 'smoke', ...extra], { cwd });
    expect(result.code).toBe(2); // every bad value exits 2
    expect(result.stderr).toMatch(message);
    expect(result.stderr.trim().split('\n')[0]).toMatch(message);
    expect(await readdir(cwd)).toEqual([]);
  });
});
