import { describe, expect, it } from 'vitest';
import { missingSamples, problemsPerRequest } from './generate-stage.js';
import { generationKey } from './records.js';

describe('generate stage requests', () => {
  it('packs about 64 samples per engine request, whole problems, at least one problem', () => {
    expect(problemsPerRequest(1)).toBe(64); // greedy pass@1: 64 problems decode as one batch
    expect(problemsPerRequest(10)).toBe(6);
    expect(problemsPerRequest(64)).toBe(1);
    expect(problemsPerRequest(200)).toBe(1); // the engine splits a request over batches itself
  });

  it('asks only for the samples a task has no record of', () => {
    const have = new Set([generationKey('HumanEval/3', 0), generationKey('HumanEval/3', 2)]);
    expect(missingSamples('HumanEval/3', 4, (key) => have.has(key))).toEqual([1, 3]);
    expect(missingSamples('HumanEval/4', 2, (key) => have.has(key))).toEqual([0, 1]);
  });
});
