import { describe, expect, it } from 'vitest';
import { distribution, quantile, summariseLevel, timePerOutputToken, type RequestTiming } from './serving-stats.js';

const timing = (overrides: Partial<RequestTiming>): RequestTiming => ({
  ok: true,
  promptTokens: 10,
  outputTokens: 5,
  ttftMs: 100,
  latencyMs: 500,
  itlMs: [100, 100, 100, 100],
  ...overrides,
});

describe('serving statistics', () => {
  it('quantiles interpolate between closest ranks, as numpy.percentile does', () => {
    expect(quantile([1, 2, 3, 4], 0.5)).toBe(2.5);
    expect(quantile([10], 0.99)).toBe(10);
    expect(quantile([], 0.5)).toBeNull();
    expect(quantile([0, 100], 0.99)).toBeCloseTo(99, 12);
    expect(distribution([3, 1, 2])).toEqual({ mean: 2, p50: 2, p90: 2.8, p99: 2.98 });
  });

  it('time per output token leaves out the first token and needs two', () => {
    expect(timePerOutputToken(timing({}))).toBe(100);
    expect(timePerOutputToken(timing({ outputTokens: 1 }))).toBeNull();
    expect(timePerOutputToken(timing({ ttftMs: null }))).toBeNull();
  });

  it('a level counts only completed requests in its figures and keeps the failures apart', () => {
    const level = summariseLevel(2, [timing({}), timing({ latencyMs: 900, ttftMs: 300 }), timing({ ok: false, error: 'HTTP 500', outputTokens: 0 })], 2);
    expect(level).toMatchObject({ concurrency: 2, requests: 3, completed: 2, failed: 1, errors: ['HTTP 500'], output_tokens: 10, prompt_tokens: 20 });
    expect(level.request_throughput).toBe(1);
    expect(level.output_token_throughput).toBe(5);
    expect(level.total_token_throughput).toBe(15);
    expect(level.ttft_ms.p50).toBe(200);
    expect(level.tpot_ms.mean).toBe(125);
    expect(level.e2e_ms.p99).toBeCloseTo(896, 9);
  });

  it('total throughput is unknown when a server does not report prompt tokens', () => {
    expect(summariseLevel(1, [timing({ promptTokens: null })], 1).total_token_throughput).toBeNull();
  });
});
