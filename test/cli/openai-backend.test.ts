import { readdir, readFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildRunConfig } from '../../src/cli/run-options.js';
import { configHash, defaultRunId } from '../../src/pipeline/run-config.js';
import { checkRecordFile, completeLines, HUMANEVAL_FILE, startCli, waitUntil } from '../fault/harness.js';
import { cliInProcess } from '../support/cli-in-process.js';
import { BOS_ID, FaultServer, referenceNll, tokenize } from '../support/openai-fault-server.js';

/**
 * `evalpipe run --backend openai` through the built CLI (bin/evalpipe.js; `npm run build` first) against the fault
 * server on loopback: a run that survives random faults, a kill -9 and a resume without a duplicate or a lost
 * record, and an API key that appears in no file of the run directory.
 */
const KEY = 'sk-evalpipe-test-7f3a9c2e41d84b6aa0c5SECRET';
const KEY_ENV = 'EVALPIPE_TEST_OPENAI_KEY';
const ROWS = 120;

let root: string;
let server: FaultServer;
let dataset: string;
let texts: string[];

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'evalpipe-openai-cli-'));
  texts = Array.from({ length: ROWS }, (_, i) => `def function_${i}(value):\n${'    value = value * 2 + 1  # step\n'.repeat(1 + (i % 5))}    return value\n`);
  dataset = join(root, 'texts.jsonl');
  await writeFile(dataset, `${texts.map((text) => JSON.stringify({ text })).join('\n')}\n`);
  server = new FaultServer({ apiKey: KEY, reflectKeyHeader: true, chunkChars: 4 });
  await server.start();
});

afterAll(async () => {
  await server?.stop();
  if (root) await rm(root, { recursive: true, force: true });
});

function command(runDir: string): string[] {
  return [
    'run',
    '--backend',
    'openai',
    '--base-url',
    server.url,
    '--model',
    'fault-model',
    '--api-key-env',
    KEY_ENV,
    '--request-timeout',
    '5', // the stalls below wait this out: generous on a busy machine
    '--tasks',
    'perplexity,humaneval',
    '--dataset',
    dataset,
    '--text-field',
    'text',
    '--rows',
    String(ROWS),
    '--max-length',
    '24',
    '--humaneval',
    HUMANEVAL_FILE,
    '--limit',
    '4',
    '-n',
    '3',
    '--temperature',
    '0.8',
    '--batch-size',
    '2',
    '--run-dir',
    runDir,
  ];
}

const env = (): NodeJS.ProcessEnv => ({ ...process.env, [KEY_ENV]: KEY });

/** Every file under `dir`, with its text. */
async function filesUnder(dir: string): Promise<{ path: string; text: string }[]> {
  const out: { path: string; text: string }[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    out.push({ path, text: await readFile(path, 'latin1') });
  }
  return out;
}

function expectNoKey(files: { path: string; text: string }[], ...streams: string[]): void {
  const leaks = files.filter((file) => file.text.includes(KEY) || file.text.includes(KEY.slice(0, 16))).map((file) => file.path);
  expect(leaks).toEqual([]);
  for (const stream of streams) expect(stream).not.toContain(KEY);
}

describe('evalpipe run --backend openai (built CLI, fault server on loopback)', () => {
  it('completes through random faults, survives kill -9 + resume without duplicates, and never writes the key', async () => {
    // 1 in 8 model requests fails: 429 (Retry-After 0), 500, a reset, a reply cut off, a stall.
    server.randomFaults(
      0.125,
      [{ kind: '429', retryAfter: '0' }, { kind: '500' }, { kind: 'reset' }, { kind: 'truncate' }, { kind: 'stall', afterChunks: 3 }],
      20_240_601,
    );
    const reference = join(root, 'reference');
    const first = await startCli(command(reference), env()).exited;
    expect(first.stderr).not.toMatch(/internal error|\n {4}at /);
    expect(first.code, first.stderr).toBe(0);
    const manifest = JSON.parse(await readFile(join(reference, 'manifest.json'), 'utf8'));
    expect(manifest.config).toMatchObject({ backend: 'openai', model: 'fault-model', backendConfig: { base_url: server.url } });
    expect(manifest.model).toMatchObject({
      source: 'remote',
      model_id: 'fault-model',
      remote: { base_url: server.url, software: { server: 'fault-server/1.0' } },
    });
    expect(manifest.engine.server.base_url).toBe(server.url);
    const results = JSON.parse(await readFile(join(reference, 'results.json'), 'utf8'));
    const nll = texts.reduce((sum, text) => sum + referenceNll([BOS_ID, ...tokenize(text)]), 0);
    expect(results.perplexity.nll_sum).toBeCloseTo(nll, 6);
    expect(results.perplexity.scored_tokens).toBe(texts.reduce((sum, text) => sum + tokenize(text).length, 0));
    expect(results.humaneval).toMatchObject({ n_problems: 4, n_samples_per_problem: 3 });
    for (const stage of ['perplexity', 'generate', 'execute']) {
      const check = await checkRecordFile(join(reference, 'records', `${stage}.jsonl`));
      expect(check.duplicates, stage).toEqual([]);
      expect(check.records.size, stage).toBe(stage === 'perplexity' ? ROWS : 12);
    }
    expect(server.requests.some((request) => request.fault !== null)).toBe(true);

    // The same command, killed with SIGKILL mid-perplexity, then run again: it finishes, nothing twice.
    const killed = join(root, 'killed');
    const run = startCli(command(killed), env());
    const perplexityFile = join(killed, 'records', 'perplexity.jsonl');
    const midway = await waitUntil(() => completeLines(perplexityFile) >= 10, { timeoutMs: 600_000, done: run.exited });
    expect(midway).toBe(true);
    run.child.kill('SIGKILL');
    const stopped = await run.exited;
    expect(stopped.signal).toBe('SIGKILL');
    const resumed = await startCli(command(killed), env()).exited;
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/resuming run/);
    for (const stage of ['perplexity', 'generate', 'execute']) {
      const check = await checkRecordFile(join(killed, 'records', `${stage}.jsonl`));
      expect(check.duplicates, stage).toEqual([]);
      expect(check.corruptLines, stage).toEqual([]);
      const expected = await checkRecordFile(join(reference, 'records', `${stage}.jsonl`));
      expect([...check.records.keys()].sort(), stage).toEqual([...expected.records.keys()].sort());
    }
    // Perplexity does not depend on sampling: every row's figures equal the uninterrupted run's.
    const a = await checkRecordFile(join(reference, 'records', 'perplexity.jsonl'));
    const b = await checkRecordFile(join(killed, 'records', 'perplexity.jsonl'));
    for (const [key, record] of a.records) expect(b.records.get(key)?.nll_sum, key).toBe(record.nll_sum);
    const again = JSON.parse(await readFile(join(killed, 'results.json'), 'utf8'));
    expect(again.perplexity.nll_sum).toBe(results.perplexity.nll_sum);

    // The key was sent on every request, and is in no file of either run, nor in anything the CLI printed.
    expect(server.requests.every((request) => request.authorization === `Bearer ${KEY}`)).toBe(true);
    expectNoKey([...(await filesUnder(reference)), ...(await filesUnder(killed))], first.stdout, first.stderr, stopped.stderr, resumed.stdout, resumed.stderr);
    server.clearFaults();
  });

  it('a refused key, a wrong model, a missing --base-url: one line each, saying what to change', async () => {
    const dir = join(root, 'errors');
    const base = ['run', '--backend', 'openai', '--tasks', 'humaneval', '--humaneval', HUMANEVAL_FILE, '--limit', '1', '--run-dir', join(dir, 'r')];
    const badKey = await cliInProcess([...base, '--base-url', server.url, '--model', 'fault-model', '--api-key-env', KEY_ENV], {
      [KEY_ENV]: 'sk-wrong-key-abcdef0123456789',
    });
    expect(badKey.code, badKey.stderr).toBe(1);
    expect(badKey.stderr).toMatch(/refused the API key \(401 .*\$EVALPIPE_TEST_OPENAI_KEY/);
    expect(badKey.stderr).not.toContain('sk-wrong-key-abcdef0123456789');
    const wrongModel = await cliInProcess([...base, '--base-url', server.url, '--model', 'gpt-7', '--api-key-env', KEY_ENV], { [KEY_ENV]: KEY });
    expect(wrongModel.code, wrongModel.stderr).toBe(1);
    expect(wrongModel.stderr).toMatch(/does not serve model "gpt-7" — --model takes a served id: fault-model/);
    const noUrl = await cliInProcess([...base, '--model', 'x']);
    expect(noUrl.code, noUrl.stderr).toBe(2);
    expect(noUrl.stderr).toMatch(/--backend openai needs --base-url/);
    const stray = await cliInProcess(['run', '--preset', 'smoke', '--base-url', server.url, '--run-dir', join(dir, 's')]);
    expect(stray.code, stray.stderr).toBe(2);
    expect(stray.stderr).toMatch(/--base-url applies to --backend openai only/);
    const latency = await cliInProcess([
      'run',
      '--backend',
      'openai',
      '--base-url',
      server.url,
      '--model',
      'fault-model',
      '--tasks',
      'latency',
      '--run-dir',
      join(dir, 'l'),
    ]);
    expect(latency.code, latency.stderr).toBe(2);
    expect(latency.stderr).toMatch(/--backend openai cannot run --tasks latency — use --tasks perplexity,humaneval/);
  });

  it("the run's identity: base URL, model and --chat count; the key's variable, timeouts, retries and concurrency do not", () => {
    const options = { backend: 'openai', 'base-url': 'http://127.0.0.1:8000/v1', model: 'm', tasks: 'humaneval' };
    const plain = buildRunConfig(options).config;
    const tuned = buildRunConfig({ ...options, 'api-key-env': 'OTHER_KEY', 'request-timeout': 9, 'max-retries': 1, 'backend-concurrency': 3 });
    expect(configHash(tuned.config)).toBe(configHash(plain));
    expect(tuned.settings.backendSettings).toEqual({ apiKeyEnv: 'OTHER_KEY', requestTimeoutS: 9, maxRetries: 1, concurrency: 3 });
    expect(JSON.stringify(tuned.config)).not.toMatch(/OTHER_KEY|requestTimeout|concurrency/);
    for (const other of [{ 'base-url': 'http://127.0.0.1:8001/v1' }, { model: 'm2' }, { chat: true }]) {
      expect(configHash(buildRunConfig({ ...options, ...other }).config)).not.toBe(configHash(plain));
    }
    expect(defaultRunId(plain)).toMatch(/^m-/);
  });
});
