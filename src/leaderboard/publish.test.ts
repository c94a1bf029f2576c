import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startLocalHub, type LocalHub } from '../../test/support/local-hub.js';
import { syntheticRun } from '../../test/support/run-dirs.js';
import { writeRunReports } from '../pipeline/report/write-reports.js';
import { packageRoot } from '../util/package-root.js';
import { buildLeaderboard } from './build.js';
import { checkTokenTransport, publish } from './publish.js';

const run = promisify(execFile);
const WRITE = 'hf_write_token_for_tests';
const READ = 'hf_read_only_token_for_tests';

describe('publish to a hub dataset repo (local hub on 127.0.0.1)', () => {
  let root: string;
  let runDir: string;
  let board: string;
  let hub: LocalHub;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'evalpipe-publish-'));
    runDir = await syntheticRun(join(root, 'run'), {
      quant: 'bf16',
      attn: 'sdpa',
      perplexityRows: [
        { nll_sum: 10, n_scored_tokens: 20, n_bytes: 60 },
        { nll_sum: 12, n_scored_tokens: 20, n_bytes: 61 },
      ],
    });
    await writeRunReports([runDir], runDir);
    board = join(root, 'leaderboard.json');
    await buildLeaderboard([runDir], board);
  });
  afterEach(async () => {
    await hub?.close();
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('commits the leaderboard and the run files, byte for byte, in one commit', async () => {
    hub = await startLocalHub({ tokens: { [WRITE]: 'write' }, repos: ['evalpipe/results'] });
    const result = await publish({ repo: 'evalpipe/results', accessToken: WRITE, hubUrl: hub.url, leaderboard: board, runDirs: [runDir] });
    expect(hub.refusals).toEqual([]);
    expect(hub.commits).toHaveLength(1);
    const commit = hub.commits[0]!;
    expect(result.commit.oid).toBe(commit.oid);
    expect(commit.revision).toBe('main');
    expect(commit.summary).toBe('evalpipe: publish 5 files');
    const runId = JSON.parse(await readFile(join(runDir, 'manifest.json'), 'utf8')).run_id as string;
    expect([...commit.files.keys()].sort()).toEqual(
      ['leaderboard.json', ...['manifest.json', 'report.html', 'report.md', 'results.json'].map((name) => `runs/${runId}/${name}`)].sort(),
    );
    expect(commit.files.get('leaderboard.json')!.equals(await readFile(board))).toBe(true);
    expect(commit.files.get(`runs/${runId}/results.json`)!.equals(await readFile(join(runDir, 'results.json')))).toBe(true);
    expect(commit.files.get(`runs/${runId}/report.html`)!.equals(await readFile(join(runDir, 'report.html')))).toBe(true);
  });

  it('creates the dataset repo with --create', async () => {
    hub = await startLocalHub({ tokens: { [WRITE]: 'write' } });
    await publish({ repo: 'evalpipe/new-results', accessToken: WRITE, hubUrl: hub.url, leaderboard: board, runDirs: [], create: true });
    expect(hub.repos.get('evalpipe/new-results')!.has('leaderboard.json')).toBe(true);
  });

  it('names the repo and what to do when the token cannot write, is unknown, or the repo is missing', async () => {
    hub = await startLocalHub({ tokens: { [WRITE]: 'write', [READ]: 'read' }, repos: ['evalpipe/results'] });
    await expect(publish({ repo: 'evalpipe/results', accessToken: READ, hubUrl: hub.url, leaderboard: board, runDirs: [] })).rejects.toThrow(
      `HF_TOKEN has no write access to dataset evalpipe/results on ${hub.url} (HTTP 403: You don't have the rights to create a commit in datasets/evalpipe/results`,
    );
    await expect(publish({ repo: 'evalpipe/results', accessToken: 'hf_unknown', hubUrl: hub.url, leaderboard: board, runDirs: [] })).rejects.toThrow(
      `the hub rejected HF_TOKEN for dataset evalpipe/results on ${hub.url} (HTTP 401`,
    );
    await expect(publish({ repo: 'evalpipe/absent', accessToken: WRITE, hubUrl: hub.url, leaderboard: board, runDirs: [] })).rejects.toThrow(
      `dataset evalpipe/absent on ${hub.url} was not found (HTTP 404)`,
    );
    await expect(publish({ repo: 'evalpipe/results', accessToken: 'not-a-token', hubUrl: hub.url, leaderboard: board, runDirs: [] })).rejects.toThrow(
      'HF_TOKEN does not look like a hub access token (it must start with hf_)',
    );
    expect(hub.commits).toHaveLength(0);
  });

  it('refuses a leaderboard that fails the schema before contacting the hub', async () => {
    hub = await startLocalHub({ tokens: { [WRITE]: 'write' }, repos: ['evalpipe/results'] });
    const bad = join(root, 'bad-board.json');
    const parsed = JSON.parse(await readFile(board, 'utf8'));
    parsed.entries[0].precision.quant = 'int3';
    await writeFile(bad, JSON.stringify(parsed));
    await expect(publish({ repo: 'evalpipe/results', accessToken: WRITE, hubUrl: hub.url, leaderboard: bad, runDirs: [] })).rejects.toThrow(
      `${bad}: entries[0]/precision/quant must be equal to one of the allowed values`,
    );
    expect(hub.commits).toHaveLength(0);
    expect(hub.refusals).toEqual([]);
  });

  it('works through the CLI with HF_TOKEN and --hub-url, and fails with one clear line for a read-only token', async () => {
    hub = await startLocalHub({ tokens: { [WRITE]: 'write', [READ]: 'read' }, repos: ['evalpipe/results'] });
    const cli = join(packageRoot(), 'bin', 'evalpipe.js');
    const ok = await run(process.execPath, [cli, 'publish', '--repo', 'evalpipe/results', '--hub-url', hub.url, '-l', board, runDir], {
      env: { ...process.env, HF_TOKEN: WRITE },
    });
    expect(ok.stdout.trim()).toBe(`${hub.url}/datasets/evalpipe/results/commit/${hub.commits[0]!.oid}`);
    const failed = await run(process.execPath, [cli, 'publish', '--repo', 'evalpipe/results', '--hub-url', hub.url, '-l', board], {
      env: { ...process.env, HF_TOKEN: READ },
    }).then(
      () => undefined,
      (error: { code: number; stderr: string }) => error,
    );
    expect(failed?.code).toBe(1);
    expect(failed?.stderr.trim().split('\n')).toHaveLength(1);
    expect(failed?.stderr).toContain('evalpipe: HF_TOKEN has no write access to dataset evalpipe/results');
    expect(failed?.stderr).toContain('use a token with write permission');
    const unset = await run(process.execPath, [cli, 'publish', '--repo', 'evalpipe/results', '-l', board], {
      env: { ...process.env, HF_TOKEN: '' },
    }).then(
      () => undefined,
      (error: { code: number; stderr: string }) => error,
    );
    expect(unset?.stderr).toContain('evalpipe: HF_TOKEN is not set');
  });
});

describe('publish guards the token', () => {
  it('refuses to send the token in clear text to a host that is not this machine', async () => {
    for (const url of ['http://hub.example.org', 'http://10.1.2.3:8080', 'ftp://127.0.0.1']) {
      await expect(publish({ repo: 'evalpipe/results', accessToken: WRITE, hubUrl: url, leaderboard: 'never-read.json', runDirs: [] })).rejects.toThrow(
        /refusing to send HF_TOKEN to .*clear text/,
      );
    }
    await expect(publish({ repo: 'evalpipe/results', accessToken: WRITE, hubUrl: 'not a url', leaderboard: 'never-read.json', runDirs: [] })).rejects.toThrow(
      /--hub-url is not a URL/,
    );
    for (const url of ['https://huggingface.co', 'http://localhost:1', 'http://127.0.0.2:9', 'http://[::1]:9'])
      expect(() => checkTokenTransport(url)).not.toThrow();
  });
});
