import { describe, expect, it } from 'vitest';
import { buildRunConfig } from './run-options.js';
import { configHash } from '../pipeline/run-config.js';
import { STAGE_NAMES, stagesForTasks } from '../pipeline/stages.js';
import { TASK_NAMES } from '../tasks/registry.js';
import { UsageError } from '../util/errors.js';

describe('buildRunConfig', () => {
  it('smoke preset: tiny model, built-in texts, CPU fp32; flags override the preset', () => {
    const { config } = buildRunConfig({ preset: 'smoke', rows: 3 });
    expect(config).toMatchObject({ model: 'preset:trained-tiny-starcoder2', device: 'cpu', quant: 'fp32', tasks: ['perplexity'] });
    expect(config.perplexity).toMatchObject({ dataset: 'builtin:smoke', rows: 3, addBos: true });
  });

  it('a list flag given twice reads as one comma list (yargs hands it over as an array)', () => {
    const { config } = buildRunConfig({ tasks: ['perplexity', 'humaneval'] as unknown as string });
    expect(config.tasks).toEqual(['perplexity', 'humaneval']);
    expect(() => buildRunConfig({ tasks: ['perplexity', 'perplexity'] as unknown as string })).toThrow(/--tasks names perplexity twice/);
  });

  it('one defaults table: CPU fp32 + sdpa, GPU bf16 + flash; --device auto on a machine without a GPU is the CPU', () => {
    expect(buildRunConfig({ device: 'cpu' }).config).toMatchObject({ quant: 'fp32', attn: 'sdpa' });
    expect(buildRunConfig({ device: 'cuda' }).config).toMatchObject({ quant: 'bf16', attn: 'flash' });
    expect(buildRunConfig({ device: 'cuda', quant: 'fp8', attn: 'sdpa' }).config).toMatchObject({ quant: 'fp8', attn: 'sdpa' });
    const hidden = process.env.CUDA_VISIBLE_DEVICES;
    process.env.CUDA_VISIBLE_DEVICES = '';
    try {
      expect(buildRunConfig({ device: 'auto' }).config).toMatchObject({ device: 'auto', quant: 'fp32', attn: 'sdpa' });
    } finally {
      if (hidden === undefined) delete process.env.CUDA_VISIBLE_DEVICES;
      else process.env.CUDA_VISIBLE_DEVICES = hidden;
    }
  });

  it('defaults follow the study: 512 rows of flytech/python-codes-25k, greedy pass@1, the 3x3 latency matrix', () => {
    const { config } = buildRunConfig({});
    expect(config.perplexity).toMatchObject({ dataset: 'flytech/python-codes-25k', rows: 512 });
    expect(config.humaneval).toMatchObject({ n: 1, temperature: 0, stripPrompt: true, timeoutS: 3 });
    expect(config.humaneval.stop).toContain('\ndef');
    expect(config.latency).toMatchObject({ batches: [2, 4, 8], contexts: [4096, 8192, 16384], warmup: 2, iters: 4, repeats: 4 });
  });

  it.each([
    [{ rows: 0 }, /--rows must be a positive whole number, got 0/],
    [{ rows: -3 }, /--rows must be a positive whole number, got -3/],
    [{ rows: 1.5 }, /--rows/],
    [{ tasks: 'perplexity,bogus' }, /--tasks: unknown value\(s\) bogus/],
    [{ quant: 'int9' }, /--quant: unknown value\(s\) int9/],
    [{ stages: '' }, /--stages is empty/],
    [{ 'top-p': 0 }, /--top-p must be in/],
    [{ 'max-length': 8, stride: 9 }, /--stride \(9\) must not exceed --max-length \(8\)/],
    [{ batches: '2,x' }, /--batches must be a comma list/],
    [{ model: ' ' }, /--model is empty/],
    [{ n: 5, temperature: 0 }, /greedy decoding .* -n is 5/],
    [{ backend: 'vllm' }, /--backend: unknown backend "vllm"/],
    [{ tasks: 'perplexity', stages: 'generate' }, /--stages generate selects no stage of --tasks perplexity: nothing would run/],
  ])('rejects %j with a clear message', (raw, message) => {
    expect(() => buildRunConfig(raw)).toThrow(UsageError);
    expect(() => buildRunConfig(raw)).toThrow(message);
  });

  it("builds each task's config from the registry, and the default backend leaves the run's identity as it was", () => {
    const plain = buildRunConfig({ preset: 'smoke' }).config;
    const named = buildRunConfig({ preset: 'smoke', backend: 'engine' }).config;
    expect(configHash(named)).toBe(configHash(plain));
    expect(Object.keys(plain)).toEqual(expect.arrayContaining([...TASK_NAMES]));
    // The study's tasks keep their stage names (older run directories and scripts name them); other tasks add theirs.
    expect(stagesForTasks(['perplexity', 'humaneval', 'latency']).map((stage) => stage.name)).toEqual([
      'perplexity',
      'generate',
      'execute',
      'latency',
      'score',
      'report',
    ]);
    expect(STAGE_NAMES).toEqual(expect.arrayContaining(['perplexity', 'generate', 'execute', 'latency', 'score', 'report']));
  });
});
