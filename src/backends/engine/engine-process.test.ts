import { afterEach, describe, expect, it } from 'vitest';
import { EngineProcess } from './engine-process.js';
import { EngineProcessError, EngineRequestError } from './engine-errors.js';
import type { ModelBackend } from '../model-backend.js';
import type { EngineInfo, EngineProgress, GeneratedSample, LoadResult, ScoredRow } from './protocol.js';
import { enginePythonCommand } from './python-command.js';

const started: EngineProcess[] = [];
async function startEngine(): Promise<EngineProcess> {
  const engine = await EngineProcess.start();
  started.push(engine);
  return engine;
}

afterEach(async () => {
  for (const engine of started.splice(0)) engine.kill();
});

describe('EngineProcess (real Python engine)', () => {
  it('starts, reports info, loads the tiny preset and scores rows', async () => {
    const engine = await startEngine();
    expect(engine.ready.protocol).toBe(1);
    const loaded = await engine.request<LoadResult>('load', { model: 'preset:tiny-starcoder2', device: 'cpu', seed: 3 });
    expect(loaded).toMatchObject({ architecture: expect.stringMatching(/Starcoder2/i), source: 'preset', quant: 'fp32' });
    const info = await engine.request<EngineInfo>('info');
    expect(info.model?.model_id).toBe(loaded.model_id);
    expect(info.torch).toMatch(/\d+\.\d+/);
    const scored = await engine.request<{ rows: ScoredRow[] }>('score', { rows: [{ index: 7, text: 'def f(x):\n    return x + 1\n' }] });
    expect(scored.rows).toHaveLength(1);
    expect(scored.rows[0]).toMatchObject({ index: 7, n_bytes: 27 });
    expect(scored.rows[0]!.nll_sum).toBeGreaterThan(0);
    expect(scored.rows[0]!.n_scored_tokens).toBe(scored.rows[0]!.n_tokens);
    await engine.shutdown();
    expect(engine.alive).toBe(false);
  });

  it('leaves no timer behind once it has shut down, so a finished run exits at once', async () => {
    const timers = (): number => process.getActiveResourcesInfo().filter((resource) => resource === 'Timeout').length;
    const engine = await startEngine();
    await engine.request('load', { model: 'preset:tiny-starcoder2', device: 'cpu', seed: 3 });
    const before = timers();
    await engine.shutdown();
    expect(engine.alive).toBe(false);
    expect(timers()).toBeLessThanOrEqual(before); // a timer still armed here kept the CLI alive ~10 s after every run
  });

  it('answers bad requests with typed errors and stays up', async () => {
    const engine = await startEngine();
    await expect(engine.request('score', { rows: [{ index: 0, text: 'x' }] })).rejects.toMatchObject({ type: 'not_loaded' });
    const missing = engine.request('load', { model: '/nonexistent/model/dir' });
    await expect(missing).rejects.toBeInstanceOf(EngineRequestError);
    await expect(missing).rejects.toMatchObject({ type: 'not_found' });
    await expect(engine.request('no_such_op')).rejects.toMatchObject({ type: 'bad_request' });
    await engine.request('load', { model: 'preset:tiny-starcoder2', device: 'cpu' });
    await expect(engine.request('score', { rows: [{ index: 4, text: '' }] })).rejects.toThrow(/row 4/);
    expect(engine.alive).toBe(true);
  });

  it('notices a killed engine at once and reports the tail of its stderr', async () => {
    const engine = await startEngine();
    await engine.request('load', { model: 'preset:tiny-starcoder2', device: 'cpu' });
    const pending = engine.request('generate', {
      requests: [{ key: 't', prompt: 'def f():' }],
      n: 64,
      temperature: 1,
      top_p: 1,
      max_new_tokens: 400,
      seed: 1,
      stop: [],
    });
    setTimeout(() => process.kill(engine.pid!, 'SIGKILL'), 200);
    const error = await pending.catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(EngineProcessError);
    expect((error as EngineProcessError).message).toMatch(/killed by SIGKILL/);
    await expect(engine.request('info')).rejects.toBeInstanceOf(EngineProcessError);
  });

  it('is a ModelBackend: typed calls, streamed samples and progress, the fast paths it resolved', async () => {
    // no fast-path variable set, whatever the shell running the tests has
    const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^EVALPIPE_(CUDA_GRAPHS|DECODE_KERNEL|CUDA_RTC|FP8_FUSED)$/.test(name)));
    const engine = await EngineProcess.start({ command: enginePythonCommand({ ...env, EVALPIPE_FP8_FUSED: '0' }) });
    started.push(engine);
    const backend: ModelBackend = engine;
    const loaded = await backend.load({ model: 'preset:tiny-starcoder2', device: 'cpu', fast_paths: { cuda_graphs: false } });
    expect(loaded.fast_paths).toEqual({ cuda_graphs: false, decode_kernel: true, cuda_rtc: true, fp8_fused: false });
    expect((await backend.info()).model?.fast_paths).toEqual(loaded.fast_paths);
    const progress: EngineProgress[] = [];
    const scored = await backend.score({ rows: [{ index: 3, text: 'x = 1\n' }] }, { onProgress: (p) => progress.push(p) });
    expect(scored.rows.map((row) => row.index)).toEqual([3]);
    expect(progress.at(-1)).toMatchObject({ unit: 'windows', done: 1, total: 1 });
    const samples: GeneratedSample[] = [];
    const generated = await backend.generate(
      { requests: [{ key: 'k', prompt: 'def f():', samples: [1, 0] }], n: 2, temperature: 0.7, top_p: 0.9, max_new_tokens: 4, seed: 0, stop: [] },
      { onSample: (sample) => samples.push(sample) },
    );
    expect(generated.count).toBe(2);
    expect(samples.map((sample) => sample.sample_index).sort()).toEqual([0, 1]);
    const cell = await backend.bench({ batch: 1, ctx: 8, warmup: 0, iters: 1, repeats: 1 });
    expect(cell.status).toBe('ok');
    await backend.close();
    expect(backend.alive).toBe(false);
  });

  it('explains an engine that cannot start', async () => {
    const start = EngineProcess.start({ command: { executable: '/nonexistent/python', args: [], env: {} }, readyTimeoutMs: 10_000 });
    await expect(start).rejects.toBeInstanceOf(EngineProcessError);
    const crash = EngineProcess.start({
      command: { executable: 'python3', args: ['-c', 'import sys; sys.stderr.write("boom: no torch here\\n"); sys.exit(3)'], env: process.env },
      readyTimeoutMs: 10_000,
    });
    await expect(crash).rejects.toThrow(/exit code 3[\s\S]*boom: no torch here/);
  });

  it('times out a request that takes too long, stopping the engine', async () => {
    const engine = await startEngine();
    await engine.request('load', { model: 'preset:tiny-starcoder2', device: 'cpu' });
    const slow = engine.request(
      'generate',
      { requests: [{ key: 't', prompt: 'x' }], n: 64, temperature: 1, top_p: 1, max_new_tokens: 400, seed: 1, stop: [] },
      { timeoutMs: 300 },
    );
    await expect(slow).rejects.toThrow(/did not answer within 0.3 s/);
  });
});
