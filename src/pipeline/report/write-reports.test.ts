import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { latencyGrid, syntheticRun } from '../../../test/support/run-dirs.js';
import { summariseRunDirs } from './run-summary.js';
import { reportTables } from './tables.js';
import { writeRunReports } from './write-reports.js';

const BATCHES = [2, 4];
const CONTEXTS = [4096, 8192];
// Times in the BASELINES.md shape: eager runs out of memory at 4 x 8192.
const EAGER = (b: number, t: number): number | 'oom' => (b === 4 && t === 8192 ? 'oom' : 0.45 * (b / 2) * (t / 4096) ** 2);
const SDPA = (b: number, t: number): number => 0.15 * (b / 2) * (t / 4096);
const FLASH = (b: number, t: number): number => 0.1 * (b / 2) * (t / 4096);
const FP8 = (b: number, t: number): number => 0.12 * (b / 2) * (t / 4096);

function rows(meanNll: number): { nll_sum: number; n_scored_tokens: number; n_bytes: number }[] {
  return Array.from({ length: 8 }, (_, i) => ({
    nll_sum: (100 + i * 10) * meanNll * (1 + (i % 3) * 0.01),
    n_scored_tokens: 100 + i * 10,
    n_bytes: 350 + i * 35,
  }));
}

describe('writeRunReports', () => {
  let root: string;
  let dirs: string[];

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'evalpipe-report-'));
    dirs = [
      await syntheticRun(join(root, 'eager'), { quant: 'bf16', attn: 'eager', latency: latencyGrid(BATCHES, CONTEXTS, EAGER) }),
      await syntheticRun(join(root, 'sdpa'), {
        quant: 'bf16',
        attn: 'sdpa',
        latency: latencyGrid(BATCHES, CONTEXTS, SDPA),
        perplexityRows: rows(0.1),
        execute: { 'HumanEval/0': [true, true], 'HumanEval/1': [false, true], 'HumanEval/2': [false, false] },
      }),
      await syntheticRun(join(root, 'flash'), { quant: 'bf16', attn: 'flash', latency: latencyGrid(BATCHES, CONTEXTS, FLASH) }),
      await syntheticRun(join(root, 'fp8'), {
        quant: 'fp8',
        attn: 'sdpa',
        latency: latencyGrid(BATCHES, CONTEXTS, FP8),
        perplexityRows: rows(0.5),
        execute: { 'HumanEval/0': [true, false], 'HumanEval/1': [false, false], 'HumanEval/2': [false, false] },
      }),
      await syntheticRun(join(root, 'nf4'), { quant: 'nf4', attn: 'sdpa', computeDtype: 'fp16', perplexityRows: rows(0.55) }),
    ];
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('writes the study-shaped tables: minibatch grid with OOM, attention and precision speedups, quality by precision', async () => {
    const written = await writeRunReports(dirs, join(root, 'out'));
    const markdown = await readFile(written.markdown, 'utf8');
    // eager grid: batch rows x context columns, OOM where it ran out of memory
    expect(markdown).toContain('### Time per minibatch (s): starcoder2-3b bf16 eager on NVIDIA H100 80GB HBM3');
    expect(markdown).toContain('| 2 | 0.450 | 1.800 |');
    expect(markdown).toContain('| 4 | 0.900 | OOM |');
    // attention speedup vs eager: 0.45 / 0.15 = 3.00x, 0.45 / 0.1 = 4.50x; OOM baseline named
    expect(markdown).toContain('### Attention speedup vs eager: starcoder2-3b bf16 on NVIDIA H100 80GB HBM3');
    expect(markdown).toContain('| 2 × 4096 | 0.450 | 0.150 | 0.100 | 3.00× | 4.50× |');
    expect(markdown).toContain('| 4 × 8192 | OOM | 0.600 | 0.400 | baseline OOM | baseline OOM |');
    // precision speedup vs bf16 at sdpa: 0.15 / 0.12 = 1.25x
    expect(markdown).toContain('### Precision speedup vs bf16: starcoder2-3b sdpa attention on NVIDIA H100 80GB HBM3');
    expect(markdown).toContain('| 2 × 4096 | 0.150 | 0.120 | 1.25× |');
    // quality: perplexity and pass@1 with standard errors; nf4 labelled with its compute dtype
    expect(markdown).toMatch(/\| starcoder2-3b \| bf16 \| sdpa \| 1\.10\d\d ± 0\.\d{4} \|/);
    expect(markdown).toContain('| 0.500 ± 0.289 | 3 × 2 |');
    expect(markdown).toContain('| nf4 (fp16 compute) | sdpa |');
    // quality cost vs bf16, paired by row: fp8 rows have 5x bf16's NLL, nf4 5.5x
    expect(markdown).toContain('### Quality cost vs bf16 (perplexity stage, paired by row)');
    const tokens = Array.from({ length: 8 }, (_, i) => 100 + i * 10);
    const weighted = tokens.reduce((sum, t, i) => sum + t * (1 + (i % 3) * 0.01), 0) / tokens.reduce((sum, t) => sum + t, 0);
    const fp8Delta = 0.4 * weighted;
    expect(markdown).toMatch(
      new RegExp(
        `\\| starcoder2-3b \\| fp8 \\| sdpa \\| bf16 sdpa \\| 8 \\| \\+${fp8Delta.toFixed(5)} ± 0\\.\\d{5} \\| ${Math.exp(fp8Delta).toFixed(4)} \\| 0\\.40350 \\| 0\\.40800 \\|`,
      ),
    );
    expect(markdown).toContain('| nf4 (fp16 compute) | sdpa | bf16 sdpa | 8 |');

    const html = await readFile(written.html, 'utf8');
    expect(html).toContain('<svg');
    expect(html).toContain('id="chart-perplexity"');
    expect(html).toContain('id="chart-pass-at-1"');
    expect(html).toContain('id="chart-latency-1"');
    expect(html).toContain('<td class="oom">OOM</td>');
    // self-contained: nothing fetched from anywhere (the SVG namespace is an identifier, not a fetch)
    const references = html.replace(/xmlns="http:\/\/www\.w3\.org\/2000\/svg"/g, '').match(/(?:src|href)\s*=|https?:\/\/|@import|url\(/g);
    expect(references).toBeNull();
  });

  it('computes pass@1 per problem and its standard error over problems', async () => {
    const [summary] = await summariseRunDirs([dirs[1]!]);
    const pass1 = summary!.humaneval!.passAtK['pass@1']!;
    expect(pass1.value).toBeCloseTo(0.5, 12); // (1 + 0.5 + 0) / 3
    expect(pass1.se).toBeCloseTo(Math.sqrt(0.25 / 3), 12); // sd of {1, .5, 0} is .5
    expect(summary!.humaneval!.statusCounts).toEqual({ passed: 3, failed: 3 });
  });

  it('leaves out speedup tables when nothing can be compared', async () => {
    const summaries = await summariseRunDirs([dirs[4]!]);
    const titles = reportTables(summaries).map((table) => table.title);
    expect(titles).toEqual(['Perplexity and pass@k by precision']);
  });

  it('refuses a directory that is not a run directory, naming it', async () => {
    await expect(writeRunReports([root], join(root, 'out2'))).rejects.toThrow(`${root} is not an evalpipe run directory (no manifest.json)`);
  });
});
