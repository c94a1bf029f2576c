import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  BOS_ID,
  type FaultServer as FaultServerType,
  FaultServer,
  type FaultServerOptions,
  referenceNll,
  tokenize,
} from '../../../test/support/openai-fault-server.js';
import { packageRoot } from '../../util/package-root.js';
import type { GeneratedSample, GenerateParams } from '../engine/protocol.js';
import { OpenAiBackend, type OpenAiBackendOptions } from './openai-backend.js';
import type { OpenAiConfig } from './openai-options.js';
import { planLmEvalWindows, planWindows } from './windows.js';

const KEY = 'sk-test-0123456789abcdefSECRET';
const servers: FaultServerType[] = [];
const backends: OpenAiBackend[] = [];

afterEach(async () => {
  for (const backend of backends.splice(0)) await backend.close();
  for (const server of servers.splice(0)) await server.stop();
});

async function serve(options: FaultServerOptions = {}): Promise<FaultServer> {
  const server = new FaultServer(options);
  await server.start();
  servers.push(server);
  return server;
}

function backendFor(
  server: FaultServer,
  options: { config?: Partial<OpenAiConfig>; apiKey?: string; timeoutS?: number; maxRetries?: number; breaker?: number; concurrency?: number } = {},
): OpenAiBackend {
  const backendOptions: OpenAiBackendOptions = {
    config: { base_url: server.url, ...options.config },
    settings: {
      apiKeyEnv: 'EVALPIPE_TEST_KEY',
      requestTimeoutS: options.timeoutS ?? 60,
      maxRetries: options.maxRetries ?? 6,
      concurrency: options.concurrency ?? 4,
    },
    apiKey: options.apiKey,
    // Short waits between attempts: the tests are about what is retried, not how long it waits.
    retry: { baseDelayMs: 5, maxDelayMs: 20, maxRetryAfterMs: 1500, ...(options.breaker ? { breakerThreshold: options.breaker } : {}) },
  };
  const backend = new OpenAiBackend(backendOptions);
  backends.push(backend);
  return backend;
}

const TEXTS = [
  'def add(a, b):\n    return a + b\n',
  'class Stack:\n    def __init__(self):\n        self.items = []\n',
  `x = 1\n${'y = x * 2  # double\n'.repeat(12)}`,
  'print("héllo wörld ✓")\n',
];
const ROWS = TEXTS.map((text, index) => ({ index: index * 3 + 1, text }));

/** The NLL the fault server's model gives a text with BOS: every token after the BOS scored once. */
const expectedNll = (text: string): number => referenceNll([BOS_ID, ...tokenize(text)]);

function generateParams(over: Partial<GenerateParams> = {}): GenerateParams {
  return {
    requests: [
      { key: 'HumanEval/0', prompt: 'def f(x):\n    """Return something."""\n' },
      { key: 'HumanEval/1', prompt: 'def g(y):\n    """Return another thing."""\n' },
    ],
    n: 1,
    temperature: 0,
    top_p: 0.95,
    max_new_tokens: 256,
    seed: 7,
    stop: ['\nclass', '\ndef', '\n#', '\n@', '\nprint', '\nif', '\n```', '<file_sep>'],
    ...over,
  };
}

async function collect(backend: OpenAiBackend, params: GenerateParams): Promise<GeneratedSample[]> {
  const samples: GeneratedSample[] = [];
  const result = await backend.generate(params, { onSample: (sample) => samples.push(sample) });
  expect(result.count).toBe(samples.length);
  return samples;
}

/** Every (key, index) asked for, each exactly once. */
function expectEachOnce(samples: GeneratedSample[], keys: string[], n: number): void {
  const seen = samples.map((sample) => `${sample.key}#${sample.sample_index}`);
  expect(new Set(seen).size).toBe(seen.length);
  expect(seen.sort()).toEqual(keys.flatMap((key) => Array.from({ length: n }, (_, i) => `${key}#${i}`)).sort());
}

describe('OpenAiBackend load', () => {
  it('checks the model against GET /v1/models and records what the server says', async () => {
    const server = await serve({ software: 'vllm/0.6.3' });
    const backend = backendFor(server);
    const loaded = await backend.load({ model: 'fault-model' });
    expect(loaded).toMatchObject({
      model_id: 'fault-model',
      source: 'remote',
      architecture: 'remote',
      max_position_embeddings: 2048,
      bos_token_id: BOS_ID,
      weights_sha256: null,
      n_params: null,
      backend: 'openai',
      remote: { base_url: server.url, api: 'completions', tokenizer: 'server', bos_source: 'server-special-tokens', software: { server: 'vllm/0.6.3' } },
    });
    expect(loaded.remote?.served_models).toEqual([{ id: 'fault-model', owned_by: 'evalpipe-tests', max_model_len: 2048 }]);
    const info = await backend.info();
    expect(info.server).toEqual({ base_url: server.url, software: { server: 'vllm/0.6.3', 'x-fault-version': '1.0' } });
    expect(info.device.type).toBe('remote');
    expect(info.model?.model_id).toBe('fault-model');
  });

  it('a model the server does not serve: one line listing the served ids', async () => {
    const server = await serve();
    await expect(backendFor(server).load({ model: 'bigcode/starcoder2-3b' })).rejects.toMatchObject({
      message: expect.stringMatching(/does not serve model "bigcode\/starcoder2-3b"/),
      hint: expect.stringMatching(/--model takes a served id: fault-model/),
    });
  });

  it('an unreachable URL: one line saying so and what to check', async () => {
    const server = await serve();
    const url = server.url;
    await server.stop();
    servers.splice(servers.indexOf(server), 1);
    const backend = new OpenAiBackend({
      config: { base_url: url },
      settings: { apiKeyEnv: 'K', requestTimeoutS: 30, maxRetries: 6, concurrency: 1 },
      apiKey: undefined,
      retry: { baseDelayMs: 5, maxDelayMs: 20 },
    });
    await expect(backend.load({ model: 'fault-model' })).rejects.toMatchObject({
      message: expect.stringMatching(/cannot reach the server at http:\/\/127\.0\.0\.1:\d+\/v1: .*connection failed/),
      hint: expect.stringMatching(/is it running, and is --base-url/),
    });
  });

  it('a refused key (401): one line naming the variable to fix, and the key nowhere in it', async () => {
    const server = await serve({ apiKey: 'the-right-key-123456' });
    const wrong = backendFor(server, { apiKey: KEY });
    const error = (await wrong.load({ model: 'fault-model' }).catch((caught: unknown) => caught)) as Error & { hint?: string };
    expect(error.message).toMatch(/refused the API key \(401/);
    expect(error.hint).toMatch(/\$EVALPIPE_TEST_KEY/);
    expect(`${error.message} ${error.hint} ${error.stack}`).not.toContain(KEY);
    expect(`${error.message}`).not.toContain(KEY.slice(0, 12));
    const none = backendFor(server);
    await expect(none.load({ model: 'fault-model' })).rejects.toMatchObject({ message: expect.stringMatching(/refused a request without an API key/) });
    expect(server.requests.at(-1)?.authorization).toBeUndefined(); // no key: no Authorization header at all
    const right = backendFor(server, { apiKey: 'the-right-key-123456' });
    await expect(right.load({ model: 'fault-model' })).resolves.toMatchObject({ model_id: 'fault-model' });
  });

  it('never records the key, even where the server reflects it in a header', async () => {
    const server = await serve({ reflectKeyHeader: true });
    const backend = backendFor(server, { apiKey: KEY });
    const loaded = await backend.load({ model: 'fault-model' });
    await backend.score({ rows: ROWS.slice(0, 1) });
    const recorded = JSON.stringify([loaded, await backend.info()]);
    expect(recorded).toContain('x-upstream-version');
    expect(recorded).not.toContain(KEY);
    expect(server.requests.every((request) => request.authorization === `Bearer ${KEY}`)).toBe(true);
  });
});

describe('OpenAiBackend score (perplexity through echo + logprobs)', () => {
  it.each<[string, { max_length: number; stride?: number; windowing?: 'lm-eval' }]>([
    ['evalpipe windows, one per row', { max_length: 2048 }],
    ['evalpipe windows of 16, stride 16', { max_length: 16, stride: 16 }],
    ['evalpipe windows of 16, stride 5', { max_length: 16, stride: 5 }],
    ['lm-eval windows of 16', { max_length: 16, windowing: 'lm-eval' }],
  ])('%s: every text token scored once, the engine fields, rows in request order', async (_, windows) => {
    const server = await serve();
    const backend = backendFor(server);
    await backend.load({ model: 'fault-model' });
    const progress: number[] = [];
    const result = await backend.score({ rows: ROWS, ...windows }, { onProgress: (p) => progress.push(p.done) });
    expect(result.rows.map((row) => row.index)).toEqual(ROWS.map((row) => row.index));
    for (const [i, row] of result.rows.entries()) {
      const text = TEXTS[i]!;
      const n = tokenize(text).length;
      const plan =
        windows.windowing === 'lm-eval'
          ? planLmEvalWindows(n, windows.max_length)
          : planWindows(n + 1, windows.max_length, windows.stride ?? windows.max_length);
      expect(row).toMatchObject({ n_scored_tokens: n, n_tokens: n, n_bytes: Buffer.byteLength(text), n_windows: plan.length });
      expect(row.nll_sum).toBeCloseTo(expectedNll(text), 9);
    }
    expect(Math.max(...progress)).toBe(result.rows.reduce((sum, row) => sum + row.n_windows, 0));
    const echo = server.requests.filter((request) => request.body?.echo === true);
    expect(echo.every((request) => request.body?.max_tokens === 0 && request.body?.logprobs === 1 && Array.isArray(request.body?.prompt))).toBe(true);
    expect(echo.every((request) => (request.body!.prompt as number[]).length <= windows.max_length + (windows.windowing === 'lm-eval' ? 1 : 0))).toBe(true);
  });

  it('--no-bos scores from the second token; a server refusing max_tokens 0 gets 1 from then on (asked once)', async () => {
    const server = await serve({ maxTokensZero: false });
    const backend = backendFor(server);
    await backend.load({ model: 'fault-model' });
    const result = await backend.score({ rows: ROWS, add_bos: false, max_length: 8 });
    expect(result.add_bos).toBe(false);
    for (const [i, row] of result.rows.entries()) {
      expect(row.n_scored_tokens).toBe(tokenize(TEXTS[i]!).length - 1);
      expect(row.nll_sum).toBeCloseTo(referenceNll(tokenize(TEXTS[i]!)), 9);
    }
    // Learned once (requests in flight when it was learned are sent again with 1), then remembered.
    const zeros = server.count('/v1/completions', (request) => request.body?.max_tokens === 0);
    expect(zeros).toBeGreaterThanOrEqual(1);
    await backend.score({ rows: ROWS, add_bos: false, max_length: 8 });
    expect(server.count('/v1/completions', (request) => request.body?.max_tokens === 0)).toBe(zeros);
  });

  it('survives 429 with Retry-After, 500, a hang, a cut-off reply and a reset connection: the same figures', async () => {
    const server = await serve();
    const clean = backendFor(server);
    await clean.load({ model: 'fault-model' });
    const reference = await clean.score({ rows: ROWS, max_length: 16 });
    const faulty = await serve();
    const backend = backendFor(faulty, { timeoutS: 3, concurrency: 2 }); // the hang waits out 3 s: generous on a busy machine
    await backend.load({ model: 'fault-model' });
    faulty.inject({ kind: '429', retryAfter: '1' }, { path: '/v1/completions' });
    faulty.inject({ kind: '503', retryAfter: new Date(Date.now() + 500).toUTCString() }, { path: '/v1/completions' });
    faulty.inject({ kind: '500' }, { path: '/v1/completions' });
    faulty.inject({ kind: 'hang' }, { path: '/v1/completions' });
    faulty.inject({ kind: 'truncate' }, { path: '/v1/completions' });
    faulty.inject({ kind: 'reset' }, { path: '/v1/completions' });
    faulty.inject({ kind: 'reset' }, { path: '/tokenize' });
    const result = await backend.score({ rows: ROWS, max_length: 16 });
    expect(result).toEqual(reference);
    expect(
      faulty.requests
        .filter((request) => request.fault !== null)
        .map((request) => request.fault)
        .sort(),
    ).toEqual(['429', '503', '500', 'hang', 'truncate', 'reset', 'reset'].sort());
  });

  it('a server without prompt logprobs: one clear error naming --tasks humaneval', async () => {
    const server = await serve({ logprobs: false });
    const backend = backendFor(server);
    await backend.load({ model: 'fault-model' });
    await expect(backend.score({ rows: ROWS })).rejects.toMatchObject({
      type: 'unsupported',
      message: expect.stringMatching(/^openai score: the server returned no log-probabilities for the prompt's tokens/),
      hint: expect.stringMatching(/--tasks humaneval/),
    });
  });

  it('no /tokenize and no --tokenizer: one clear error naming --tokenizer; --tokenizer preset: the local tokenizer', async () => {
    const server = await serve({ tokenize: false });
    const backend = backendFor(server);
    const loaded = await backend.load({ model: 'fault-model' });
    expect(loaded.remote).toMatchObject({ tokenizer: null, bos_source: null });
    await expect(backend.score({ rows: ROWS, add_bos: false })).rejects.toMatchObject({ type: 'unsupported', hint: expect.stringMatching(/--tokenizer/) });
    await expect(backend.score({ rows: ROWS, add_bos: true })).rejects.toMatchObject({
      type: 'bad_request',
      hint: expect.stringMatching(/--tokenizer .* or --no-bos/),
    });

    const local = backendFor(server, { config: { tokenizer: 'preset:tiny-starcoder2' } });
    expect((await local.load({ model: 'fault-model' })).remote).toMatchObject({ tokenizer: 'local', bos_source: 'tokenizer' });
    const scored = await local.score({ rows: ROWS, max_length: 32 });
    const root = packageRoot();
    const ids = JSON.parse(
      execFileSync(
        join(root, '.venv', 'bin', 'python'),
        [
          '-c',
          'import json,sys; from evalpipe_engine.presets import build_tokenizer; t=build_tokenizer(); print(json.dumps([t.encode(x, add_special_tokens=False).ids for x in json.load(sys.stdin)]))',
        ],
        { input: JSON.stringify(TEXTS), env: { ...process.env, PYTHONPATH: join(root, 'cuda') }, encoding: 'utf8' },
      ),
    ) as number[][];
    for (const [i, row] of scored.rows.entries()) {
      expect(row.n_tokens).toBe(ids[i]!.length);
      expect(row.nll_sum).toBeCloseTo(referenceNll([0, ...ids[i]!]), 9);
    }
  });

  it("refuses a --max-length beyond the server's max_model_len, as the engine does", async () => {
    const server = await serve({ maxModelLen: 64 });
    const backend = backendFor(server);
    await backend.load({ model: 'fault-model' });
    await expect(backend.score({ rows: ROWS, max_length: 65 })).rejects.toMatchObject({
      type: 'bad_request',
      message: expect.stringMatching(/exceeds the model's maximum of 64/),
    });
    await expect(backend.score({ rows: ROWS, max_length: 64, windowing: 'lm-eval' })).rejects.toMatchObject({
      type: 'bad_request',
      hint: expect.stringMatching(/--max-length 63/),
    });
    expect((await backend.score({ rows: ROWS })).max_length).toBe(64);
  });
});

describe('OpenAiBackend generate', () => {
  const keys = ['HumanEval/0', 'HumanEval/1'];

  it('greedy: one streamed sample per problem, stop strings applied as the engine does, finish reasons mapped', async () => {
    const server = await serve();
    const backend = backendFor(server);
    await backend.load({ model: 'fault-model' });
    const samples = await collect(backend, generateParams());
    expectEachOnce(samples, keys, 1);
    for (const sample of samples) {
      expect(sample.completion).toMatch(/^ {4}return \d+\n\n$/);
      expect(sample).toMatchObject({ finish_reason: 'stop', stop_sequence: '\ndef' });
      expect(sample.n_new_tokens).toBe(sample.completion.length); // the server's usage (one character a token)
    }
    const sent = server.requests.find((request) => request.path === '/v1/completions')!.body!;
    expect(sent).toMatchObject({ model: 'fault-model', n: 1, temperature: 0, top_p: 0.95, max_tokens: 256, stream: true, stop: generateParams().stop });
    expect(typeof sent.seed).toBe('number');

    // A server that ignores stop strings: the completion is cut on our side, the same way.
    const ignoring = await serve({ serverStops: false });
    const other = backendFor(ignoring);
    await other.load({ model: 'fault-model' });
    expect(await collect(other, generateParams())).toEqual(samples.map((sample) => ({ ...sample, n_new_tokens: expect.any(Number) })));
    const short = await collect(other, generateParams({ max_new_tokens: 6, stop: [] }));
    expect(short.every((sample) => sample.finish_reason === 'length' && sample.completion.length === 6)).toBe(true);
  });

  it.each([
    ['an error naming n', 'error' as const],
    ['fewer choices than asked', 'fewer' as const],
  ])('a server capping n (%s): split requests, every sample once', async (_, how) => {
    const server = await serve({ maxN: { n: 3, how } });
    const backend = backendFor(server);
    await backend.load({ model: 'fault-model' });
    const samples = await collect(backend, generateParams({ n: 10, temperature: 0.8 }));
    expectEachOnce(samples, keys, 10);
    const asked = server.requests.filter((request) => request.path === '/v1/completions').map((request) => Number(request.body?.n));
    expect(asked.filter((n) => n <= 3).length).toBeGreaterThanOrEqual(6); // 10 samples at ≤ 3 a request, per problem
    const later = await collect(backend, generateParams({ n: 7, temperature: 0.8 }));
    expectEachOnce(later, keys, 7);
    expect(server.requests.slice(-6).every((request) => Number(request.body?.n) <= 3)).toBe(true); // the cap is remembered
  });

  it('survives faults mid-stream (stalls, cut-off chunks, resets, 429, 500) and slow streams: nothing lost, nothing twice', async () => {
    const server = await serve({ chunkChars: 2 });
    const backend = backendFor(server, { timeoutS: 3, concurrency: 3 });
    await backend.load({ model: 'fault-model' });
    server.inject({ kind: 'stall', afterChunks: 9 }, { path: '/v1/completions' });
    server.inject({ kind: 'truncate' }, { path: '/v1/completions' });
    server.inject({ kind: 'reset' }, { path: '/v1/completions' });
    server.inject({ kind: '429', retryAfter: '0' }, { path: '/v1/completions' });
    server.inject({ kind: '500' }, { path: '/v1/completions' });
    server.inject({ kind: 'slow', delayMs: 20 }, { path: '/v1/completions', count: 2 });
    const params = generateParams({ n: 6, temperature: 0.7, requests: ['A', 'B', 'C', 'D'].map((key) => ({ key, prompt: `def ${key.toLowerCase()}():\n` })) });
    const samples = await collect(backend, params);
    expectEachOnce(samples, ['A', 'B', 'C', 'D'], 6);
    expect(samples.every((sample) => sample.finish_reason === 'stop' && /^ {4}return \d+\n\n$/.test(sample.completion))).toBe(true);
    // Each retry asked only for the samples that had not arrived.
    const asked = server.requests.filter((request) => request.path === '/v1/completions').reduce((sum, request) => sum + Number(request.body?.n), 0);
    expect(asked).toBeGreaterThan(24);
  });

  it('given sample indices: only those, each once (a resumed problem)', async () => {
    const server = await serve();
    const backend = backendFor(server);
    await backend.load({ model: 'fault-model' });
    const samples = await collect(backend, generateParams({ n: 8, temperature: 0.5, requests: [{ key: 'K', prompt: 'def k():\n', samples: [5, 2, 7] }] }));
    expect(samples.map((sample) => sample.sample_index).sort()).toEqual([2, 5, 7]);
    expect(server.requests.at(-1)?.body?.n).toBe(3);
  });

  it("--chat: the instruct prompt, and the reply's code turned back into a completion of the prompt", async () => {
    const server = await serve();
    const backend = backendFor(server, { config: { chat: true } });
    expect((await backend.load({ model: 'fault-model' })).remote?.api).toBe('chat');
    const samples = await collect(backend, generateParams());
    // The reply repeats the function: its body (the docstring again, then the code) follows the prompt.
    for (const sample of samples)
      expect(sample).toMatchObject({
        completion: expect.stringMatching(/^ {4}"{3}Return [a-z ]+\."{3}\n {4}return \d+\n$/),
        finish_reason: 'eos',
        stop_sequence: null,
      });
    const sent = server.requests.find((request) => request.path === '/v1/chat/completions')!.body!;
    expect(sent.stop).toBeUndefined();
    expect((sent.messages as { content: string }[])[1]!.content).toMatch(/^Please provide a self-contained Python script .*\n```python\ndef f\(x\):/);
  });
});

describe('OpenAiBackend robustness limits', () => {
  it('the circuit breaker: a server failing every request stops the stage with one line', async () => {
    const server = await serve();
    const backend = backendFor(server, { breaker: 8, concurrency: 4 });
    await backend.load({ model: 'fault-model' });
    server.inject({ kind: '500' }, { path: '/v1/completions', count: 1000 });
    const error = await backend.generate(generateParams({ n: 4, temperature: 0.5 })).catch((caught: unknown) => caught);
    expect(error).toMatchObject({
      code: 'remote_server',
      message: expect.stringMatching(/failed 8 requests in a row \(last: 500 internal server error\); stopping/),
    });
    expect(server.count('/v1/completions')).toBeLessThan(16);
    await expect(backend.score({ rows: ROWS })).rejects.toMatchObject({ message: expect.stringMatching(/in a row/) }); // it stays open
  });

  it('a request out of retries: one line naming the attempts and what to raise', async () => {
    const server = await serve();
    const backend = backendFor(server, { maxRetries: 2 });
    await backend.load({ model: 'fault-model' });
    server.inject({ kind: '429' }, { path: '/v1/completions', count: 100 });
    await expect(backend.generate(generateParams())).rejects.toMatchObject({
      message: expect.stringMatching(/failed 3 attempts \(last: 429 rate limited\)/),
      hint: expect.stringMatching(/--max-retries/),
    });
  });

  it('bench is unsupported with a clear message', async () => {
    const server = await serve();
    const backend = backendFor(server);
    await backend.load({ model: 'fault-model' });
    await expect(backend.bench({ batch: 1, ctx: 8 })).rejects.toMatchObject({ type: 'unsupported', message: expect.stringMatching(/serving benchmark/) });
  });
});
