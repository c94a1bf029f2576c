import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkRecordFile, HUMANEVAL_FILE, withoutTiming } from '../fault/harness.js';
import { cliInProcess } from '../support/cli-in-process.js';
import { FaultServer } from '../support/openai-fault-server.js';

/**
 * Several --base-url with --backend openai against real HTTP servers on loopback (the fault server, whose answers
 * depend on the request alone, so every replica answers alike): the work is spread over the replicas, the records
 * equal a one-server run's, and a replica that fails (503 on every completion) or is gone (connection refused)
 * has its requests sent to the others while the run completes.
 */
describe('--backend openai with several --base-url (replicas of one model)', () => {
  let root: string;
  let dataset: string;
  const servers: FaultServer[] = [];

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'evalpipe-replicas-'));
    dataset = join(root, 'texts.jsonl');
    const texts = Array.from({ length: 40 }, (_, i) => `def f_${i}(x):\n${'    x = x * 3 + 1\n'.repeat(1 + (i % 4))}    return x\n`);
    await writeFile(dataset, `${texts.map((text) => JSON.stringify({ text })).join('\n')}\n`);
    for (let i = 0; i < 3; i += 1) {
      const server = new FaultServer();
      await server.start();
      servers.push(server);
    }
  });
  afterAll(async () => {
    for (const server of servers) await server.stop().catch(() => undefined);
    if (root) await rm(root, { recursive: true, force: true });
  });

  const command = (runDir: string, urls: string[]) => [
    'run',
    '--backend',
    'openai',
    ...urls.flatMap((url) => ['--base-url', url]),
    '--model',
    'fault-model',
    '--tasks',
    'perplexity,humaneval',
    '--stages',
    'perplexity,generate',
    '--dataset',
    dataset,
    '--text-field',
    'text',
    '--rows',
    '40',
    '--max-length',
    '16',
    '--humaneval',
    HUMANEVAL_FILE,
    '--limit',
    '6',
    '-n',
    '3',
    '--temperature',
    '0.8',
    '--batch-size',
    '2',
    '--request-timeout',
    '10',
    '--run-dir',
    runDir,
  ];
  const records = async (dir: string, stage: string) => {
    const check = await checkRecordFile(join(dir, 'records', `${stage}.jsonl`));
    expect(check.duplicates).toEqual([]);
    return new Map([...check.records].map(([key, record]) => [key, withoutTiming(record)]));
  };
  const completions = (server: FaultServer) => server.count('/v1/completions');

  it('spreads the requests over every replica, records what the one-server run records, and states the replicas in the manifest', async () => {
    const [a, b, c] = servers as [FaultServer, FaultServer, FaultServer];
    const reference = join(root, 'one');
    const one = await cliInProcess(command(reference, [a.url]));
    expect(one.code, one.stderr).toBe(0);
    const before = servers.map(completions);
    const spread = join(root, 'three');
    const three = await cliInProcess(command(spread, [a.url, `${b.url},${c.url}`]));
    expect(three.code, three.stderr).toBe(0);
    const sent = servers.map((server, i) => completions(server) - before[i]!);
    expect(
      sent.every((count) => count > 0),
      `completions per replica: ${sent.join(', ')}`,
    ).toBe(true);
    expect(three.stderr).toContain('openai: requests per replica:');
    for (const stage of ['perplexity', 'generate']) expect(await records(spread, stage), stage).toEqual(await records(reference, stage));
    const manifest = JSON.parse(await readFile(join(spread, 'manifest.json'), 'utf8'));
    expect(manifest.model.remote.replicas).toEqual([a.url, b.url, c.url]);
    expect(manifest.model.remote.base_url).toBe(a.url);
    // The first --base-url names the run; the others are capacity: the one-server run's identity is kept
    const first = JSON.parse(await readFile(join(reference, 'manifest.json'), 'utf8'));
    expect(manifest.config_hash).toBe(first.config_hash);
  });

  it("a failing replica's and a dead replica's requests go to the others, and the run completes with the same records", async () => {
    const [a, b, c] = servers as [FaultServer, FaultServer, FaultServer];
    const reference = join(root, 'one');
    b.randomFaults(1, [{ kind: '503' }], 7); // every completion request to b fails
    await c.stop(); // c is gone: connection refused
    const failedBefore = b.count('/v1/completions', (request) => request.fault === '503');
    const aBefore = completions(a);
    const dir = join(root, 'failover');
    const run = await cliInProcess(command(dir, [a.url, b.url, c.url]));
    expect(run.code, run.stderr).toBe(0);
    expect(b.count('/v1/completions', (request) => request.fault === '503')).toBeGreaterThan(failedBefore);
    expect(completions(a)).toBeGreaterThan(aBefore);
    for (const stage of ['perplexity', 'generate']) expect(await records(dir, stage), stage).toEqual(await records(reference, stage));
    expect(run.stderr).toMatch(/requests per replica: .*\(\d+ failed\)/);
    b.clearFaults();
  });

  it('a bad URL among several: one line naming it, exit 2', async () => {
    const bad = await cliInProcess(command(join(root, 'bad'), [servers[0]!.url, 'ftp://127.0.0.1/v1']));
    expect(bad.code, bad.stderr).toBe(2);
    expect(bad.stderr).toMatch(/--base-url must be http or https, got ftp/);
  });
});
