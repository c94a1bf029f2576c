import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EngineProcess } from '../../backends/engine/engine-process.js';
import type { GeneratedSample } from '../../backends/engine/protocol.js';
import { packageRoot } from '../../util/package-root.js';

/** The built CLI (`npm run build` writes dist/), run as a user runs it. */
const BIN = join(packageRoot(), 'bin', 'evalpipe.js');
const PRESET = 'preset:tiny-starcoder2';
const KEY_ENV = 'EVALPIPE_TEST_SERVE_KEY';
const KEY = `sk-test-${randomBytes(8).toString('hex')}`;
const ENV = { ...process.env, CUDA_VISIBLE_DEVICES: '', HF_HUB_OFFLINE: '1', [KEY_ENV]: KEY };
const PROMPTS = ['def f(x):\n    return x', 'for i in range('];
const STOP = ['\nclass', '\ndef', 'mpi'];

interface Cli {
  child: ChildProcess;
  stderr: () => string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startCli(args: string[]): Cli {
  const child = spawn(process.execPath, [BIN, ...args], { env: ENV, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  child.stdout!.resume();
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, stderr: () => stderr, exit };
}

async function listeningOn(cli: Cli, timeoutMs = 300_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const match = /listening on (http:\/\/\S+)/.exec(cli.stderr());
    if (match) return match[1]!;
    if (cli.child.exitCode !== null) throw new Error(`evalpipe engine serve exited ${cli.child.exitCode}:\n${cli.stderr()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`no listening line within ${timeoutMs} ms:\n${cli.stderr()}`);
}

describe('evalpipe engine serve --http', () => {
  beforeAll(() => {
    if (!existsSync(join(packageRoot(), 'dist', 'cli', 'main.js'))) throw new Error('run `npm run build` first: this test runs the built CLI');
  });

  it.each([
    [['--http', '70000'], /^evalpipe: --http must be a port number from 0 to 65535, got 70000/],
    [['--http', 'x'], /^evalpipe: --http must be a port number from 0 to 65535, got NaN/],
    [['--http', '0', '--quant', 'fp9'], /^evalpipe: --quant: unknown value\(s\) fp9/],
    [['--model', PRESET], /^evalpipe: --model applies to the HTTP server only/],
  ])('refuses %j with exit 2 and one line', async (args, message) => {
    const cli = startCli(['engine', 'serve', ...args]);
    const { code } = await cli.exit;
    expect(code).toBe(2);
    expect(cli.stderr()).toMatch(message);
    expect(cli.stderr().trimEnd().split('\n')).toHaveLength(1);
  });

  describe('serving the tiny preset', () => {
    let cli: Cli;
    let client: OpenAI;
    let native: EngineProcess;

    beforeAll(async () => {
      cli = startCli(['engine', 'serve', '--http', '0', '--model', PRESET, '--device', 'cpu', '--api-key-env', KEY_ENV]);
      native = await EngineProcess.start();
      // What the CLI loads by default: run's defaults (seed 1234; fp32 + sdpa on the CPU).
      await native.load({ model: PRESET, device: 'cpu', seed: 1234, quant: 'fp32', attn: 'sdpa' });
      client = new OpenAI({ baseURL: `${await listeningOn(cli)}/v1`, apiKey: KEY, maxRetries: 0 });
    });
    afterAll(async () => {
      await native?.shutdown();
      if (cli?.child.exitCode === null) cli.child.kill('SIGKILL');
    });

    it('answers the openai client with the native engine greedy text', async () => {
      const samples: GeneratedSample[] = [];
      await native.generate(
        { requests: PROMPTS.map((prompt, i) => ({ key: String(i), prompt })), n: 1, top_p: 1, seed: 0, max_new_tokens: 24, temperature: 0, stop: STOP },
        { onSample: (sample) => samples.push(sample) },
      );
      for (const [i, prompt] of PROMPTS.entries()) {
        const expected = samples.find((sample) => sample.key === String(i))!;
        const out = await client.completions.create({ model: PRESET, prompt, max_tokens: 24, temperature: 0, stop: STOP });
        expect(out.choices).toHaveLength(1);
        expect(out.choices[0]!.text).toBe(expected.completion);
        expect(out.choices[0]!.finish_reason).toBe(expected.finish_reason === 'length' ? 'length' : 'stop');
        expect(out.usage?.prompt_tokens).toBe(expected.n_prompt_tokens);
        // Streamed, the same text in pieces.
        const stream = await client.completions.create({ model: PRESET, prompt, max_tokens: 24, temperature: 0, stop: STOP, stream: true });
        let text = '';
        for await (const chunk of stream) text += chunk.choices[0]?.text ?? '';
        expect(text).toBe(expected.completion);
      }
      const models = await client.models.list();
      expect(models.data.map((model) => model.id)).toEqual([PRESET]);
    });

    it('refuses a wrong key and an unknown model the OpenAI way', async () => {
      const stranger = new OpenAI({ baseURL: client.baseURL, apiKey: 'wrong', maxRetries: 0 });
      await expect(stranger.completions.create({ model: PRESET, prompt: 'x', max_tokens: 1 })).rejects.toMatchObject({ status: 401 });
      await expect(client.completions.create({ model: 'gpt-4', prompt: 'x', max_tokens: 1 })).rejects.toMatchObject({
        status: 404,
        code: 'model_not_found',
      });
    });

    it('stops on SIGTERM with exit 0', async () => {
      cli.child.kill('SIGTERM');
      const { code } = await cli.exit;
      expect(code).toBe(0);
      expect(cli.stderr()).toContain('SIGTERM received: stopping');
    });
  });
});
