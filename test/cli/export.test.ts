import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { realSmokeRun } from '../support/run-dirs.js';
import { runCli } from '../support/spawn-cli.js';

describe('evalpipe export --format lm-eval (real CLI on a real smoke run)', () => {
  let runDir = '';
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'evalpipe-export-'));
    runDir = join(dir, 'smoke');
    await realSmokeRun(runDir, { windowing: 'lm-eval', 'max-length': 64 });
  }, 300_000);

  it("writes lm-eval's results JSON shape: results{task: metric,none / metric_stderr,none}, configs, versions, n-samples, config", async () => {
    const outFile = join(dir, 'lm_eval_results.json');
    const result = await runCli(['export', '--format', 'lm-eval', runDir, '-o', outFile]);
    expect(result.stderr).not.toMatch(/internal error/);
    expect(result.code).toBe(0);
    expect(result.stdout.trim()).toBe(outFile);
    const exported = JSON.parse(await readFile(outFile, 'utf8'));
    const ours = JSON.parse(await readFile(join(runDir, 'results.json'), 'utf8'));
    const ppl = ours.perplexity;
    expect(Object.keys(exported.results)).toEqual(['perplexity']);
    const metrics = exported.results.perplexity;
    expect(metrics['word_perplexity,none']).toBe(ppl.word_perplexity);
    expect(metrics['byte_perplexity,none']).toBe(ppl.byte_perplexity);
    expect(metrics['bits_per_byte,none']).toBe(ppl.bits_per_byte);
    for (const metric of ['word_perplexity', 'byte_perplexity', 'bits_per_byte']) {
      expect(metrics[`${metric}_stderr,none`]).toBe(ppl.estimates[metric].se);
      expect(metrics[`${metric}_stderr,none`]).toBeGreaterThan(0);
    }
    // lm-eval's definitions, from the sums results.json keeps.
    expect(metrics['word_perplexity,none']).toBeCloseTo(Math.exp(ppl.nll_sum / ppl.words), 9);
    expect(metrics['byte_perplexity,none']).toBeCloseTo(Math.exp(ppl.nll_sum / ppl.bytes), 9);
    expect(metrics['bits_per_byte,none']).toBeCloseTo(ppl.nll_sum / ppl.bytes / Math.LN2, 12);
    expect(exported.versions).toEqual({ perplexity: 1 });
    expect(ours.versions).toEqual({ perplexity: 1 });
    expect(exported['n-samples']).toEqual({ perplexity: { original: 24, effective: 24 } });
    expect(exported.configs.perplexity).toMatchObject({
      task: 'perplexity',
      output_type: 'loglikelihood_rolling',
      metadata: { version: 1, windowing: 'lm-eval', max_length: 64, rows: 24 },
    });
    expect(exported.higher_is_better.perplexity).toEqual({ word_perplexity: false, byte_perplexity: false, bits_per_byte: false });
    expect(exported.config).toMatchObject({ model: 'evalpipe', model_name: 'preset:trained-tiny-starcoder2', device: 'cpu' });
    expect(exported.config.model_args).toMatch(/^pretrained=preset:trained-tiny-starcoder2,quant=fp32,attn=sdpa/);
    expect(exported.evalpipe.run_id).toBe(ours.run_id);
    expect(typeof exported.date).toBe('number');

    // Without -o the JSON goes to stdout, the same.
    const stdout = await runCli(['export', runDir]);
    expect(stdout.code).toBe(0);
    expect(JSON.parse(stdout.stdout)).toEqual(exported);
  }, 120_000);

  it('a run that is not scored yet, and an unknown --format: one clear error line each', async () => {
    await rm(join(runDir, 'results.json'));
    const unscored = await runCli(['export', '--format', 'lm-eval', runDir]);
    expect(unscored.code).toBe(1);
    expect(unscored.stderr).toMatch(/is not scored yet \(no results\.json\)/);
    expect(unscored.stderr).not.toMatch(/internal error|    at /);
    expect(unscored.stdout).toBe('');
    const format = await runCli(['export', '--format', 'helm', runDir]);
    expect(format.code).toBe(2); // a bad value exits 2
    expect(format.stderr).toMatch(/unknown --format "helm"/);
    expect(
      format.stderr
        .trim()
        .split('\n')
        .filter((line) => line.startsWith('evalpipe:')),
    ).toHaveLength(1);
  }, 120_000);
});
