import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkRecordFile, HUMANEVAL_FILE, startCli } from '../fault/harness.js';
import { type EngineHttpServer, startEngineHttpServer } from '../support/engine-http-server.js';

/**
 * The same evaluation two ways: our engine as a child process (--backend engine), and the same engine behind its
 * OpenAI-compatible HTTP server (`python -m evalpipe_engine http`, tiny preset on CPU, loopback) evaluated with
 * --backend openai. Perplexity must agree to 1e-6 relative (row by row) and greedy completions must be equal: the
 * remote path (window plans, echo logprobs, streamed samples, stop strings) adds nothing and loses nothing.
 */
const SEED = '1234'; // the run's default --seed, which is also the random preset's weight seed on the native path (the
// smoke preset's trained model is replaced by the seeded random one the server serves)
const SHARED = [
  '--preset',
  'smoke',
  '--model',
  'preset:tiny-starcoder2',
  '--tasks',
  'perplexity,humaneval',
  '--humaneval',
  HUMANEVAL_FILE,
  '--limit',
  '4',
  '--max-new-tokens',
  '48',
];
const WINDOWS = ['--max-length', '64', '--stride', '40'];

let root: string;
let server: EngineHttpServer | undefined;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'evalpipe-openai-parity-'));
  server = await startEngineHttpServer(['--model', 'preset:tiny-starcoder2', '--device', 'cpu', '--seed', SEED]);
}, 600_000);

afterAll(async () => {
  await server?.stop();
  if (root) await rm(root, { recursive: true, force: true });
});

async function run(args: string[]): Promise<{ results: Record<string, any>; dir: string }> {
  const dir = join(root, `run-${Math.random().toString(36).slice(2)}`);
  const result = await startCli(['run', ...args, '--run-dir', dir]).exited;
  expect(result.code, result.stderr).toBe(0);
  return { results: JSON.parse(await readFile(join(dir, 'results.json'), 'utf8')), dir };
}

async function completions(dir: string): Promise<Record<string, unknown>> {
  const { records } = await checkRecordFile(join(dir, 'records', 'generate.jsonl'));
  return Object.fromEntries(
    [...records].map(([key, record]) => [key, { completion: record.completion, finish_reason: record.finish_reason, stop: record.stop_sequence }]),
  );
}

describe('--backend openai against our engine HTTP server equals --backend engine', () => {
  it.each([
    ['evalpipe windows', WINDOWS],
    ['lm-eval windows', ['--max-length', '64', '--windowing', 'lm-eval']],
  ])('%s: the same perplexity (1e-6 relative, per row) and the same greedy completions', async (_, windows) => {
    const native = await run([...SHARED, ...windows]);
    const remote = await run([...SHARED, ...windows, '--backend', 'openai', '--base-url', server!.baseUrl]);
    const a = native.results.perplexity;
    const b = remote.results.perplexity;
    expect(b.rows).toBe(a.rows);
    expect(b.scored_tokens).toBe(a.scored_tokens);
    expect(b.bytes).toBe(a.bytes);
    expect(Math.abs(b.nll_sum - a.nll_sum) / a.nll_sum).toBeLessThan(1e-6);
    expect(Math.abs(b.perplexity - a.perplexity) / a.perplexity).toBeLessThan(1e-6);
    for (const [key, row] of Object.entries(a.per_row as Record<string, { nll_sum: number; n_scored_tokens: number }>)) {
      expect(b.per_row[key].n_scored_tokens, key).toBe(row.n_scored_tokens);
      expect(Math.abs(b.per_row[key].nll_sum - row.nll_sum) / row.nll_sum, key).toBeLessThan(1e-6);
    }
    const expected = await completions(native.dir);
    expect(Object.keys(expected)).toHaveLength(4);
    expect(await completions(remote.dir)).toEqual(expected);
    expect(Object.values(a.per_row as Record<string, unknown>).length).toBe(24);
    expect(remote.results.humaneval.pass_at_k).toEqual(native.results.humaneval.pass_at_k);
    const manifest = JSON.parse(await readFile(join(remote.dir, 'manifest.json'), 'utf8'));
    expect(manifest.model).toMatchObject({ source: 'remote', model_id: 'preset:tiny-starcoder2', max_position_embeddings: 512, bos_token_id: 0 });
    expect(manifest.model.remote).toMatchObject({
      tokenizer: 'server',
      bos_source: 'server-tokenizer-info',
      software: { server: expect.stringMatching(/^evalpipe-engine\//) },
    });
  });
});
