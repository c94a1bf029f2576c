import { describe, expect, it } from 'vitest';
import { lmEvalResults } from './lm-eval-export.js';
import type { RunData } from './store/run-reader.js';

function run(results: Record<string, unknown> | undefined): Pick<RunData, 'dir' | 'manifest' | 'results'> {
  return {
    dir: '/runs/r',
    manifest: {
      config: {
        model: 'bigcode/starcoder2-3b',
        quant: 'bf16',
        attn: 'sdpa',
        device: 'cuda',
        seed: 1234,
        tasks: ['humaneval'],
        humaneval: { n: 10, limit: undefined },
      },
      model: { revision: 'abc123', n_params: 3, dtype: 'bfloat16', device: 'cuda', max_position_embeddings: 16384 },
      tool: { name: 'evalpipe', version: '0.1.0', node: 'v20' },
      datasets: { humaneval: { id: 'openai/openai_humaneval' } },
      stop_sequences: ['\ndef'],
    } as never,
    results: results as never,
  };
}

describe('lm-eval export of humaneval', () => {
  it('pass@k under the create_test filter, with the standard error over problems; "N/A" where it is undefined', () => {
    const exported = lmEvalResults(
      run({
        run_id: 'r',
        config_hash: 'h',
        completed_at: '2026-12-03T00:00:00.000Z',
        versions: { humaneval: 1 },
        humaneval: {
          pass_at_k: { 'pass@1': 0.3, 'pass@10': 0.6 },
          n_problems: 164,
          n_samples_per_problem: 10,
          estimates: { 'pass@1': { value: 0.3, se: 0.03, n: 164 }, 'pass@10': { value: 0.6, se: null, n: 164 } },
        },
      }),
    );
    expect(exported.results).toEqual({
      humaneval: {
        alias: 'humaneval',
        'pass@1,create_test': 0.3,
        'pass@1_stderr,create_test': 0.03,
        'pass@10,create_test': 0.6,
        'pass@10_stderr,create_test': 'N/A',
      },
    });
    expect(exported.versions).toEqual({ humaneval: 1 });
    expect(exported['n-samples']).toEqual({ humaneval: { original: 164, effective: 164 } });
    expect(exported.configs.humaneval).toMatchObject({
      task: 'humaneval',
      output_type: 'generate_until',
      repeats: 10,
      dataset_path: 'openai/openai_humaneval',
    });
    expect(exported.higher_is_better.humaneval).toEqual({ 'pass@1': true, 'pass@10': true });
    expect(exported.config).toMatchObject({ model_sha: 'abc123', random_seed: 1234, model_name: 'bigcode/starcoder2-3b' });
    expect(exported.date).toBe(Date.parse('2026-12-03T00:00:00.000Z') / 1000);
  });

  it('refuses a run that is not scored yet', () => {
    expect(() => lmEvalResults(run(undefined))).toThrow(/\/runs\/r is not scored yet \(no results\.json\)/);
  });
});
