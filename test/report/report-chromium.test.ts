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
