import { execFile, execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PALETTE } from '../../src/pipeline/report/svg-chart.js';
import { writeRunReports } from '../../src/pipeline/report/write-reports.js';
import { countColour, countNonWhite, decodePng } from '../support/png.js';
import { latencyGrid, syntheticRun } from '../support/run-dirs.js';

const run = promisify(execFile);

function findChromium(): string {
  for (const name of ['chromium', 'chromium-browser']) {
    try {
      return execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim();
    } catch {
      // try the next name
    }
  }
  throw new Error('chromium is not installed: run `bash scripts/install-chromium.sh` (scripts/test.sh does)');
}

/** Flags that keep headless Chromium off the network and out of the user's profile. */
function chromiumFlags(profile: string): string[] {
  return [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
    '--disable-extensions',
    `--user-data-dir=${profile}`,
  ];
}

describe('report.html in headless Chromium', () => {
  let root: string;
  let html: string;
  let chromium: string;

  beforeAll(async () => {
    chromium = findChromium();
    root = await mkdtemp(join(tmpdir(), 'evalpipe-chromium-'));
    const grid = (scale: number) => latencyGrid([2, 4], [4096, 8192], (b, t) => (scale > 0.4 && b === 4 && t === 8192 ? 'oom' : scale * (b / 2) * (t / 4096)));
    const rows = (nll: number) => Array.from({ length: 6 }, (_, i) => ({ nll_sum: nll * (50 + i), n_scored_tokens: 50 + i, n_bytes: 170 + i }));
    const execute = (passes: boolean[]) => Object.fromEntries(passes.map((passed, i) => [`HumanEval/${i}`, [passed]]));
    const dirs = [
      await syntheticRun(join(root, 'eager'), {
        quant: 'bf16',
        attn: 'eager',
        latency: grid(0.45),
        perplexityRows: rows(0.1),
        execute: execute([true, true, false, true]),
      }),
      await syntheticRun(join(root, 'sdpa'), {
        quant: 'bf16',
        attn: 'sdpa',
        latency: grid(0.14),
        perplexityRows: rows(0.1),
        execute: execute([true, true, false, true]),
      }),
      await syntheticRun(join(root, 'nf4'), {
        quant: 'nf4',
        attn: 'sdpa',
        latency: grid(0.2),
        perplexityRows: rows(0.5),
        execute: execute([true, false, false, true]),
      }),
    ];
    html = (await writeRunReports(dirs, join(root, 'out'))).html;
  });
  afterAll(async () => {
    if (root) await rm(root, { recursive: true, force: true });
  });

  it('renders the charts: a non-blank screenshot with the bar colours of every series', async () => {
    const screenshot = join(root, 'report.png');
    await run(chromium, [...chromiumFlags(join(root, 'profile-1')), '--window-size=1200,1600', `--screenshot=${screenshot}`, pathToFileURL(html).href], {
      timeout: 90_000,
    });
    const png = decodePng(await readFile(screenshot));
    expect(png.width).toBe(1200);
    expect(png.height).toBe(1600);
    // Charts sit at the top: a blank or failed page would be (almost) all white.
    expect(countNonWhite(png) / (png.width * png.height)).toBeGreaterThan(0.03);
    // The first series' bars (perplexity, pass@1, latency) and the latency chart's other two series.
    expect(countColour(png, PALETTE[0]!)).toBeGreaterThan(5000);
    expect(countColour(png, PALETTE[1]!)).toBeGreaterThan(200);
    expect(countColour(png, PALETTE[2]!)).toBeGreaterThan(200);
  });

  it('has the expected labels in the rendered DOM', async () => {
    const { stdout } = await run(chromium, [...chromiumFlags(join(root, 'profile-2')), '--dump-dom', pathToFileURL(html).href], {
      timeout: 90_000,
      maxBuffer: 32 * 1024 * 1024,
    });
    for (const label of [
      'Perplexity by precision (lower is better)',
      'HumanEval pass@1 by precision (higher is better)',
      'Time per minibatch: starcoder2-3b on NVIDIA H100 80GB HBM3',
      'seconds per minibatch',
      'starcoder2-3b nf4 sdpa',
      'Attention speedup vs eager',
      'Precision speedup vs bf16',
      '>OOM<',
    ]) {
      expect(stdout).toContain(label);
    }
    expect(stdout.match(/<svg/g)?.length).toBe(3);
  });
});

/** Heights in pixels of the bars drawn in `hex`: runs of adjacent columns holding that colour, tallest column each. */
function barHeightsInPng(png: ReturnType<typeof decodePng>, hex: string): number[] {
  const [r, g, b] = [1, 3, 5].map((index) => Number.parseInt(hex.slice(index, index + 2), 16));
  const columns = Array.from({ length: png.width }, (_, x) => {
    let count = 0;
    for (let y = 0; y < png.height; y += 1) {
      const i = (y * png.width + x) * 4;
      if (png.pixels[i] === r && png.pixels[i + 1] === g && png.pixels[i + 2] === b) count += 1;
    }
    return count;
  });
  const bars: number[] = [];
  let current = 0;
  for (const count of [...columns, 0]) {
    if (count > 0) current = Math.max(current, count);
    else if (current > 0) {
      bars.push(current);
      current = 0;
    }
  }
  // Bars are several pixels wide; a legend swatch or a lone column of the colour is not a bar.
  return bars;
}

describe('report.html people read, in headless Chromium (PNGs kept in /tmp for a look)', () => {
  let root: string;
  let chromium: string;
  const rows = (nll: number) => Array.from({ length: 6 }, (_, i) => ({ nll_sum: nll * (60 + i), n_scored_tokens: 60 + i, n_bytes: 200 + i }));

  beforeAll(async () => {
    chromium = findChromium();
    root = await mkdtemp(join(tmpdir(), 'evalpipe-chromium-readable-'));
  });
  afterAll(async () => {
    if (root) await rm(root, { recursive: true, force: true });
  });

  async function screenshot(html: string, name: string): Promise<{ png: ReturnType<typeof decodePng>; dom: string }> {
    const path = join(tmpdir(), `evalpipe-report-${name}.png`);
    await run(chromium, [...chromiumFlags(join(root, `profile-${name}`)), '--window-size=1200,1800', `--screenshot=${path}`, pathToFileURL(html).href], {
      timeout: 90_000,
    });
    const { stdout } = await run(chromium, [...chromiumFlags(join(root, `profile-${name}-dom`)), '--dump-dom', pathToFileURL(html).href], {
      timeout: 90_000,
      maxBuffer: 32 * 1024 * 1024,
    });
    return { png: decodePng(await readFile(path)), dom: stdout };
  }

  it('one run (random weights, every candidate a SyntaxError): no single-bar chart, its figures as values, failures and settings shown', async () => {
    const dir = await syntheticRun(join(root, 'one'), {
      model: 'preset:tiny-starcoder2',
      quant: 'fp32',
      attn: 'sdpa',
      perplexityRows: rows(6.2),
      execute: Object.fromEntries(Array.from({ length: 5 }, (_, i) => [`HumanEval/${i}`, [false]])),
      failure: { status: 'failed', exception_type: 'SyntaxError', message: 'invalid syntax (<string>, line 14)' },
      latency: latencyGrid([2, 4], [4096, 8192], (b, t) => 0.1 * (b / 2) * (t / 4096)),
    });
    const html = (await writeRunReports([dir], join(root, 'one-out'))).html;
    const { png, dom } = await screenshot(html, 'one-run');
    expect(countNonWhite(png) / (png.width * png.height)).toBeGreaterThan(0.03);
    // Only the latency chart (four cells to compare); perplexity and pass@1 are values in the figures table.
    expect(dom.match(/<svg/g)?.length).toBe(1);
    expect(dom).toContain('id="chart-latency-1"');
    expect(dom).not.toContain('id="chart-perplexity"');
    expect(dom).not.toContain('id="chart-pass-at-1"');
    for (const label of [
      '<section id="figures">',
      'HumanEval pass@1 (higher is better)',
      'tiny-starcoder2 fp32 sdpa (random weights)',
      'HumanEval outcomes by status',
      'failed: SyntaxError',
      'invalid syntax (&lt;string&gt;, line 14)',
      'Settings: HumanEval generation',
      'Settings: perplexity',
    ]) {
      expect(dom).toContain(label);
    }
    // the latency chart's four bars are drawn
    expect(barHeightsInPng(png, PALETTE[0]!).filter((height) => height > 5).length).toBeGreaterThanOrEqual(4);
  });

  it('close values (four precisions within 2%): the axis is scaled to them and marked, and the bars differ visibly', async () => {
    const dirs: string[] = [];
    for (const [quant, nll] of [
      ['fp32', 0.2],
      ['bf16', 0.2008],
      ['int8', 0.2031],
      ['nf4', 0.2142],
    ] as const) {
      dirs.push(await syntheticRun(join(root, `close-${quant}`), { quant, attn: 'sdpa', perplexityRows: rows(nll) }));
    }
    const html = (await writeRunReports(dirs, join(root, 'close-out'))).html;
    const { png, dom } = await screenshot(html, 'close-values');
    expect(dom.match(/<svg/g)?.length).toBe(1);
    expect(dom).toMatch(/axis starts at [\d.]+, not 0/);
    expect(dom).toContain('class="axis-break"');
    // Only the perplexity chart uses the first colour: its four bars, the shortest under half the tallest (from 0
    // they would be within 1.5% of each other).
    const bars = barHeightsInPng(png, PALETTE[0]!).filter((height) => height > 12);
    expect(bars).toHaveLength(4);
    expect(Math.min(...bars) / Math.max(...bars)).toBeLessThan(0.5);
  });
});
