import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { syntheticRun } from '../../../test/support/run-dirs.js';
import { log } from '../../util/log.js';
import { renderHtml } from './html.js';
import { renderMarkdown } from './markdown.js';
import { summariseRunDir, type RunSummary } from './run-summary.js';
import { writeRunReports } from './write-reports.js';

/** Rows whose mean NLL per token is `nll` (so perplexity = exp(nll)), with a little spread between rows. */
function rows(nll: number): { nll_sum: number; n_scored_tokens: number; n_bytes: number }[] {
  return Array.from({ length: 6 }, (_, i) => ({ nll_sum: nll * (60 + i) * (1 + (i % 2) * 0.002), n_scored_tokens: 60 + i, n_bytes: 200 + i }));
}

const ALL_FAIL = { 'HumanEval/0': [false], 'HumanEval/1': [false], 'HumanEval/2': [false], 'HumanEval/3': [false] };
const SYNTAX_ERROR = { status: 'failed' as const, exception_type: 'SyntaxError', message: 'invalid syntax (<string>, line 14)\nTraceback follows' };

/** The SVG chart with this id in an HTML page, or undefined. */
function chart(html: string, id: string): string | undefined {
  return html.match(new RegExp(`<svg[^>]*id="${id}"[\\s\\S]*?</svg>`))?.[0];
}

function barHeights(svg: string): number[] {
  return [...svg.matchAll(/<rect class="bar"[^>]*height="([\d.]+)"/g)].map((match) => Number(match[1]));
}

describe('reports people read', () => {
  let root: string;
  let oneRun: RunSummary;
  let preset: RunSummary;
  let close: RunSummary[];
  let zeros: RunSummary[];

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'evalpipe-findings-'));
    oneRun = await summariseRunDir(
      await syntheticRun(join(root, 'one'), {
        quant: 'bf16',
        attn: 'sdpa',
        perplexityRows: rows(1.2),
        execute: ALL_FAIL,
        humanevalRows: 164,
        failure: SYNTAX_ERROR,
        runOptions: { 'max-new-tokens': 256, 'max-length': 2048, stride: 1024 },
      }),
    );
    preset = await summariseRunDir(
      await syntheticRun(join(root, 'preset'), { model: 'preset:tiny-starcoder2', quant: 'fp32', attn: 'sdpa', perplexityRows: rows(6.2) }),
    );
    // Four precisions a few tenths of a percent apart.
    close = [];
    for (const [quant, nll] of [
      ['fp32', 0.2],
      ['bf16', 0.2008],
      ['int8', 0.2031],
      ['nf4', 0.2142],
    ] as const) {
      close.push(await summariseRunDir(await syntheticRun(join(root, `close-${quant}`), { quant, attn: 'sdpa', perplexityRows: rows(nll) })));
    }
    zeros = [
      await summariseRunDir(await syntheticRun(join(root, 'zero-bf16'), { quant: 'bf16', attn: 'sdpa', execute: ALL_FAIL, failure: SYNTAX_ERROR })),
      await summariseRunDir(await syntheticRun(join(root, 'zero-fp8'), { quant: 'fp8', attn: 'sdpa', execute: ALL_FAIL, failure: SYNTAX_ERROR })),
    ];
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('breaks HumanEval samples down by status and lists the failure types with one example each', () => {
    const markdown = renderMarkdown([oneRun], 'now');
    expect(markdown).toContain('### HumanEval outcomes by status');
    expect(markdown).toContain('| starcoder2-3b | bf16 | sdpa | 4 | 0 (0.0%) | 4 (100.0%) |');
    expect(markdown).toContain('### HumanEval failure types');
    expect(markdown).toContain('| starcoder2-3b | bf16 | sdpa | failed: SyntaxError | 4 (100.0%) | HumanEval/0 #0 | invalid syntax (<string>, line 14) |');
    const html = renderHtml([oneRun], 'now');
    expect(html).toContain('<td>failed: SyntaxError</td>');
    expect(html).toContain('<td>invalid syntax (&lt;string&gt;, line 14)</td>');
  });

  it('shows the settings each run was made with, from the manifest', () => {
    const markdown = renderMarkdown([oneRun], 'now');
    expect(markdown).toContain('### Settings: HumanEval generation');
    expect(markdown).toContain(
      '| starcoder2-3b | bf16 | sdpa | 1 | 0 (greedy) | 0.95 | 256 | "\\nclass" "\\ndef" "\\n#" "\\n@" … (8 in all) | stripped | first 4 of 164 (--limit) | default | 3 s, 1024 MB |',
    );
    expect(markdown).toContain('### Settings: perplexity');
    expect(markdown).toContain('| starcoder2-3b | bf16 | sdpa | flytech/python-codes-25k | c0ffee | 6 | default | 2048 | 1024 | prepended |');
    expect(markdown).toContain('### Settings: engine');
    expect(markdown).toMatch(/\| starcoder2-3b \| bf16 \| sdpa \| cuda \| NVIDIA H100 80GB HBM3 \| (no|—) \| 1234 \| checkpoint sha256 ffffffffffff \|/);
    expect(renderHtml([oneRun], 'now')).toContain('<h3>Settings: HumanEval generation</h3>');
  });

  it('labels a run whose checkpoint was generated as random weights, and only that run', () => {
    expect(preset.randomWeights).toBe(true);
    expect(oneRun.randomWeights).toBe(false);
    const markdown = renderMarkdown([preset, oneRun], 'now');
    expect(markdown).toContain('| tiny-starcoder2 fp32 sdpa (random weights) |');
    expect(markdown).toContain('| starcoder2-3b bf16 sdpa |');
    expect(markdown).toContain('random weights (generated preset:tiny-starcoder2)');
    expect(markdown).toMatch(/\| tiny-starcoder2 \(random weights\) \| fp32 \| sdpa \| 49\d\.\d{4} ± /);
    const html = renderHtml([preset, oneRun], 'now');
    expect(html).toContain('<strong>Random weights:</strong>');
    // under its bar in the perplexity chart too
    expect(chart(html, 'chart-perplexity')).toContain('(random weights)</tspan>');
    expect(renderHtml([oneRun], 'now')).not.toContain('random weights');
  });

  it('scales the axis to close values and marks that it does not start at 0', () => {
    const svg = chart(renderHtml(close, 'now'), 'chart-perplexity')!;
    expect(svg).toBeDefined();
    const heights = barHeights(svg);
    expect(heights).toHaveLength(4);
    // From 0 the four bars would be within 1.5% of each other; scaled to the data the smallest is under half the largest.
    expect(Math.min(...heights) / Math.max(...heights)).toBeLessThan(0.5);
    expect(svg).toContain('class="axis-break"');
    const bottom = svg.match(/<text class="axis-min"[^>]*>([^<]+)</)?.[1];
    expect(Number(bottom)).toBeGreaterThan(1);
    expect(svg).toContain(`axis starts at ${bottom}, not 0`);
    // the ticks tell the close values apart: no tick label twice
    const ticks = [...svg.matchAll(/text-anchor="end">([^<]+)</g)].map((match) => match[1]);
    expect(new Set(ticks).size).toBe(ticks.length);
  });

  it('keeps the axis at 0 when the values are far apart', () => {
    const svg = chart(renderHtml([close[0]!, preset], 'now'), 'chart-perplexity')!;
    expect(svg).not.toContain('axis-break');
    expect(svg).not.toContain('axis starts at');
  });

  it('draws a pass@1 of 0 as a labelled bar, not an empty chart', () => {
    const svg = chart(renderHtml(zeros, 'now'), 'chart-pass-at-1')!;
    expect(svg).toBeDefined();
    const heights = barHeights(svg);
    expect(heights).toHaveLength(2);
    for (const height of heights) expect(height).toBeGreaterThanOrEqual(2);
    expect(svg.match(/<text class="value"[^>]*>0\.000</g)).toHaveLength(2);
  });

  it('draws no single-bar chart for one run: its figures are values in a table', () => {
    const html = renderHtml([oneRun], 'now');
    expect(html).not.toContain('<svg');
    expect(html).toContain('<section id="figures">');
    expect(html).toMatch(/<td>Perplexity \(lower is better\)<\/td><td>starcoder2-3b bf16 sdpa<\/td><td class="figure-value">3\.32\d\d ± 0\.\d{4}<\/td>/);
    expect(html).toContain('<td>HumanEval pass@1 (higher is better)</td><td>starcoder2-3b bf16 sdpa</td><td class="figure-value">0.000 ± 0.000 (4 × 1)</td>');
  });

  it('warns once and says "not scored" for a run without results.json, instead of silent dashes', async () => {
    const dir = await syntheticRun(join(root, 'unscored'), { quant: 'bf16', attn: 'sdpa', perplexityRows: rows(1.2), execute: ALL_FAIL });
    await rm(join(dir, 'results.json'));
    const warnings: string[] = [];
    vi.spyOn(log, 'warn').mockImplementation((message: string) => {
      warnings.push(message);
    });
    const written = await writeRunReports([dir], join(root, 'unscored-out'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(dir);
    expect(warnings[0]).toContain('not scored');
    expect(warnings[0]).toContain('evalpipe run <same options> --stages score,report');
    const markdown = await readFile(written.markdown, 'utf8');
    expect(markdown).toContain('> **Not scored:**');
    expect(markdown).toMatch(/\| starcoder2-3b \| bf16 \| sdpa \| not scored \| not scored \| not scored \| not scored \| not scored \| — \| NVIDIA/);
    const html = await readFile(written.html, 'utf8');
    expect(html).toContain('<strong>Not scored:</strong>');
    expect(html).toContain('<td class="not-scored">not scored</td>');
  });
});
