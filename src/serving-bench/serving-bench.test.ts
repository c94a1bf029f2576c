import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngineHttpServer, type EngineHttpServer } from '../../test/support/engine-http-server.js';
import { runCli } from '../../test/support/spawn-cli.js';

/** `evalpipe bench --backend openai` against the real engine behind its HTTP server on loopback. */
describe('the serving benchmark', () => {
  let server: EngineHttpServer;
  beforeAll(async () => {
    server = await startEngineHttpServer(['--model', 'preset:tiny-starcoder2', '--device', 'cpu']);
  }, 600_000); // a hang detector for a saturated 2-core machine, not an expected duration
  afterAll(async () => {
    await server?.stop();
  });

  it('times every level: all requests complete, counts and latencies are consistent, the table and JSON say so', async () => {
    const out = join(await mkdtemp(join(tmpdir(), 'evalpipe-serving-')), 'serving.json');
    const result = await runCli([
      'bench',
      '--backend',
      'openai',
      '--base-url',
      server.baseUrl,
      '--model',
      'preset:tiny-starcoder2',
      '--serving-concurrency',
      '1,3',
      '--requests',
      '6',
      '--max-tokens',
      '12',
      '--prompts',
      'random',
      '--input-words',
      '20',
      '-o',
      out,
    ]); // prettier-ignore
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/\| concurrency \| ok \/ failed \|/);
    const { header, levels } = JSON.parse(await readFile(out, 'utf8'));
    expect(header).toMatchObject({
      kind: 'serving',
      base_url: server.baseUrl,
      model: 'preset:tiny-starcoder2',
      settings: { max_tokens: 12, ignore_eos: true },
    });
    expect(header.server.software).toMatch(/^evalpipe-engine\//);
    expect(levels.map((level: { concurrency: number }) => level.concurrency)).toEqual([1, 3]);
    for (const level of levels) {
      expect(level).toMatchObject({ requests: 6, completed: 6, failed: 0 });
      // ignore_eos: every request makes exactly --max-tokens tokens, as the server's usage reports them
      expect(level.output_tokens).toBe(6 * 12);
      expect(level.prompt_tokens).toBeGreaterThan(0);
      expect(level.ttft_ms.p50).toBeGreaterThan(0);
      expect(level.ttft_ms.p99).toBeLessThanOrEqual(level.e2e_ms.p99);
      expect(level.output_token_throughput).toBeCloseTo(level.output_tokens / level.duration_s, 6);
    }
  }, 600_000);

  it('a wrong model name and an unreachable server each get one clear line', async () => {
    const wrong = await runCli(['bench', '--backend', 'openai', '--base-url', server.baseUrl, '--model', 'nope', '--requests', '1']);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/does not serve model nope .*use --model preset:tiny-starcoder2/);
    const gone = await runCli(['bench', '--backend', 'openai', '--base-url', 'http://127.0.0.1:9/v1', '--model', 'm', '--requests', '1']);
    expect(gone.code).toBe(2);
    expect(gone.stderr).toMatch(/cannot reach http:\/\/127\.0\.0\.1:9\/v1\/models/);
    const engineFlag = await runCli(['bench', '--backend', 'openai', '--base-url', server.baseUrl, '--model', 'm', '--quant', 'fp8']);
    expect(engineFlag.code).toBe(2);
    expect(engineFlag.stderr).toMatch(/--quant times our engine; bench --backend openai does not use it/);
  }, 600_000);
});
