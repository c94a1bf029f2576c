import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { GENERATE_SAMPLER, humanEvalConfigFrom } from './config.js';

describe('the sampler in a run identity', () => {
  it('is the engine sampler named in cuda/evalpipe_engine/sampling.py', async () => {
    const source = await readFile(new URL('../../../cuda/evalpipe_engine/sampling.py', import.meta.url), 'utf8');
    expect(source.match(/^SAMPLER = "([^"]+)"$/m)?.[1]).toBe(GENERATE_SAMPLER);
  });

  it('is part of a sampled run, not of a greedy one or one a remote server samples', () => {
    expect(humanEvalConfigFrom({ n: 5, temperature: 0.8 }).sampler).toBe(GENERATE_SAMPLER);
    expect(humanEvalConfigFrom({}).sampler).toBeUndefined();
    expect(humanEvalConfigFrom({ n: 5, temperature: 0.8, backend: 'openai' }).sampler).toBeUndefined();
  });
});
