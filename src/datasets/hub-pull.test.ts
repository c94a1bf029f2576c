import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DataError, UsageError } from '../util/errors.js';
import type { CacheRecord } from './cache-record.js';
import { hubOptionsFromEnv } from './hub-options.js';
import { pullHubDataset } from './hub-pull.js';
import { loadDatasetRows, loadTextRows } from './load.js';
import { listDatasetSpecs } from './specs.js';
import { startLocalHub, type LocalHub, type LocalHubDataset } from '../../test/support/local-hub.js';

const REPO = 'flytech/python-codes-25k';
const PARQUET_SHA = 'a'.repeat(40);
const MAIN_SHA = 'b'.repeat(40);

function rowsFrom(start: number, count: number): Record<string, string>[] {
  return Array.from({ length: count }, (_, k) => {
    const i = start + k;
    return {
      instruction: `Write f${i}`,
      input: '',
      output: `\`\`\`python\ndef f${i}(x):\n    return x + ${i}\n\`\`\``,
      text: `Write f${i}\n\`\`\`python\ndef f${i}(x):\n    return x + ${i}\n\`\`\``,
    };
  });
}

function parquetOf(rows: Record<string, string>[]): Uint8Array {
  const names = ['instruction', 'input', 'output', 'text'];
  return new Uint8Array(
    parquetWriteBuffer({
      columnData: names.map((name) => ({ name, data: rows.map((row) => row[name] ?? ''), type: 'STRING' as const })),
      rowGroupSize: 8,
    }),
  );
}

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

// Two parquet shards (30 + 20 rows) on refs/convert/parquet, and the JSONL on main, as on the real hub.
const SHARD0 = parquetOf(rowsFrom(0, 30));
const SHARD1 = parquetOf(rowsFrom(30, 20));
const JSONL = new TextEncoder().encode(
  `${rowsFrom(0, 50)
    .map((row) => JSON.stringify(row))
    .join('\n')}\n`,
);
const DATASET: LocalHubDataset = {
  repo: REPO,
  refs: { 'refs/convert/parquet': PARQUET_SHA, main: MAIN_SHA },
  commits: {
    [PARQUET_SHA]: { 'default/train/0000.parquet': SHARD0, 'default/train/0001.parquet': SHARD1, '.gitattributes': new Uint8Array(4) },
    [MAIN_SHA]: {
      'python-codes-25k.jsonl': JSONL,
      'README.md': new TextEncoder().encode('# card'),
      '.gitattributes': new Uint8Array(4),
    },
  },
};

let hub: LocalHub;
let cacheDir: string;

beforeAll(async () => {
  hub = await startLocalHub([DATASET]);
});
afterAll(async () => {
  await hub.close();
});
beforeEach(async () => {
  cacheDir = await mkdtemp(join(tmpdir(), 'evalpipe-hub-cache-'));
  hub.requests.length = 0;
});
afterEach(async () => {
  await rm(cacheDir, { recursive: true, force: true });
});

/** A port that nothing listens on: the hub "cannot be reached". */
async function deadUrl(): Promise<string> {
  const closed = await startLocalHub([]);
  await closed.close();
  return closed.url;
}

async function allFiles(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true })).map(String);
}

describe('hub data sets through the real @huggingface/hub client', () => {
  it('resolves refs/convert/parquet to a sha, downloads only the first shard for 20 rows, and records it', async () => {
    const loaded = await loadTextRows(REPO, { rows: 20, hubUrl: hub.url, cacheDir });
    expect(loaded.textField).toBe('output');
    expect(loaded.texts).toHaveLength(20);
    expect(loaded.texts[19]?.text).toContain('def f19(x)');
    expect(loaded.provenance).toMatchObject({ source: 'hub', id: REPO, revision: PARQUET_SHA, rowCount: 20 });
    expect(loaded.provenance.files).toEqual([{ path: 'default/train/0000.parquet', sha256: sha256(SHARD0), bytes: SHARD0.length }]);
    expect(hub.requests).toContain(`GET /api/datasets/${REPO}/revision/refs%2Fconvert%2Fparquet`);
    expect(hub.requests.some((line) => line.endsWith('0001.parquet'))).toBe(false);

    const recordFile = join(cacheDir, 'hub', 'flytech--python-codes-25k', 'snapshots', PARQUET_SHA, 'record.json');
    const record = JSON.parse(await readFile(recordFile, 'utf8')) as CacheRecord;
    expect(record).toMatchObject({ schema_version: 1, repo: REPO, revision: PARQUET_SHA, requested_revisions: ['refs/convert/parquet'] });
    expect(record.files).toHaveLength(1);
    expect(record.files[0]).toMatchObject({ path: 'default/train/0000.parquet', sha256: sha256(SHARD0), bytes: SHARD0.length });
    expect(Date.parse(record.files[0]?.downloaded_at ?? '')).not.toBeNaN();
    expect(record.splits['default/train']?.files.map((file) => file.path)).toEqual(['default/train/0000.parquet', 'default/train/0001.parquet']);
    expect((await allFiles(cacheDir)).filter((name) => name.endsWith('.incomplete'))).toEqual([]);
  });

  it('crosses into the next shard when --rows needs it and reuses the cached one', async () => {
    await loadDatasetRows(REPO, { rows: 10, hubUrl: hub.url, cacheDir });
    hub.requests.length = 0;
    const loaded = await loadDatasetRows(REPO, { rows: 45, hubUrl: hub.url, cacheDir });
    expect(loaded.rows).toHaveLength(45);
    expect(loaded.rows[44]?.instruction).toBe('Write f44');
    expect(loaded.provenance.files.map((file) => file.path)).toEqual(['default/train/0000.parquet', 'default/train/0001.parquet']);
    const downloads = hub.requests.filter((line) => line.includes('/resolve/'));
    expect(downloads.every((line) => line.endsWith('0001.parquet'))).toBe(true);
    expect(downloads.length).toBeGreaterThan(0);
  });

  it('gives the same content hash for the same rows from parquet and from the JSONL on main', async () => {
    const parquet = await loadDatasetRows(REPO, { rows: 40, hubUrl: hub.url, cacheDir });
    const jsonl = await loadDatasetRows(REPO, { rows: 40, revision: 'main', hubUrl: hub.url, cacheDir });
    expect(jsonl.provenance.revision).toBe(MAIN_SHA);
    expect(jsonl.provenance.files).toEqual([{ path: 'python-codes-25k.jsonl', sha256: sha256(JSONL), bytes: JSONL.length }]);
    expect(jsonl.provenance.contentSha256).toBe(parquet.provenance.contentSha256);
  });

  it('works offline from a warm cache without a single request', async () => {
    const online = await loadTextRows(REPO, { rows: 25, hubUrl: hub.url, cacheDir });
    hub.requests.length = 0;
    const offline = await loadTextRows(REPO, { rows: 25, hubUrl: hub.url, cacheDir, offline: true });
    expect(hub.requests).toEqual([]);
    expect(offline.provenance).toEqual(online.provenance);
    expect(offline.texts).toEqual(online.texts);
  });

  it('offline with an empty cache fails with one clear line naming the local-file way out', async () => {
    const error = await loadTextRows(REPO, { hubUrl: hub.url, cacheDir, offline: true }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DataError);
    const line = (error as DataError).toUserLine();
    expect(line).not.toContain('\n');
    expect(line).toContain('is not in the cache');
    expect(line).toContain('HF_HUB_OFFLINE=1');
    expect(line).toContain('--dataset');
    expect(line).toContain('.parquet');
    expect(hub.requests).toEqual([]);
  });

  it('offline with the cache short of the rows asked for says which file is missing', async () => {
    await loadTextRows(REPO, { rows: 5, hubUrl: hub.url, cacheDir });
    await expect(loadTextRows(REPO, { rows: 40, cacheDir, offline: true })).rejects.toThrow(/default\/train\/0001\.parquet is not in the cache/);
  });

  it('with the hub unreachable: a cold cache gives the one clear error, a warm cache still works', async () => {
    const url = await deadUrl();
    const cold = await loadTextRows(REPO, { hubUrl: url, cacheDir }).catch((e: unknown) => e);
    expect(cold).toBeInstanceOf(DataError);
    expect((cold as DataError).message).toMatch(/is not in the cache .* and the hub cannot be reached/);
    expect((cold as DataError).hint).toMatch(/--dataset/);

    await loadTextRows(REPO, { rows: 12, hubUrl: hub.url, cacheDir });
    const warm = await loadTextRows(REPO, { rows: 12, hubUrl: url, cacheDir });
    expect(warm.texts).toHaveLength(12);
    expect(warm.provenance.revision).toBe(PARQUET_SHA);
  });

  it('re-downloads a cached file whose bytes no longer match the recorded sha256', async () => {
    await loadTextRows(REPO, { rows: 5, hubUrl: hub.url, cacheDir });
    const local = join(cacheDir, 'hub', 'flytech--python-codes-25k', 'snapshots', PARQUET_SHA, 'files', 'default', 'train', '0000.parquet');
    await writeFile(local, 'tampered');
    hub.requests.length = 0;
    const again = await loadTextRows(REPO, { rows: 5, hubUrl: hub.url, cacheDir });
    expect(again.provenance.files[0]?.sha256).toBe(sha256(SHARD0));
    expect(hub.requests.some((line) => line.endsWith('0000.parquet'))).toBe(true);
    // Offline, a tampered file cannot be repaired: it is reported, not read.
    await writeFile(local, 'tampered');
    await expect(loadTextRows(REPO, { rows: 5, cacheDir, offline: true })).rejects.toThrow(/0000\.parquet is not in the cache/);
  });

  it('refuses a download whose bytes do not match the hub listing and leaves nothing behind', async () => {
    const bad = await startLocalHub([DATASET]);
    try {
      bad.corrupt(REPO, PARQUET_SHA, 'default/train/0000.parquet', new Uint8Array(SHARD0.length));
      const error = await loadTextRows(REPO, { rows: 5, hubUrl: bad.url, cacheDir }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DataError);
      expect((error as DataError).message).toMatch(/has sha256 [0-9a-f]{64}, the hub listed/);
      const files = await allFiles(cacheDir);
      expect(files.filter((name) => name.endsWith('.parquet') || name.endsWith('.incomplete'))).toEqual([]);
    } finally {
      await bad.close();
    }
  });

  it('sends HF_TOKEN as a bearer token and explains a refusal', async () => {
    const gated = await startLocalHub([DATASET], { token: 'hf_test_token' });
    try {
      const env = hubOptionsFromEnv({ HF_TOKEN: 'hf_test_token', HF_ENDPOINT: `${gated.url}/` });
      expect(env).toEqual({ offline: false, accessToken: 'hf_test_token', hubUrl: gated.url });
      const loaded = await loadTextRows(REPO, { rows: 3, cacheDir, ...env });
      expect(loaded.texts).toHaveLength(3);
      expect(gated.authorizations.every((header) => header === 'Bearer hf_test_token')).toBe(true);

      const refused = await loadTextRows(REPO, { rows: 3, hubUrl: gated.url, cacheDir: join(cacheDir, 'other') }).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(DataError);
      expect((refused as DataError).message).toContain('refused access');
      expect((refused as DataError).hint).toContain('HF_TOKEN');
    } finally {
      await gated.close();
    }
    await expect(loadTextRows(REPO, { accessToken: 'not-a-token', cacheDir })).rejects.toThrow(/must start with "hf_"/);
  });

  it('explains an unknown repo, revision or split', async () => {
    await expect(loadTextRows('nobody/nothing', { hubUrl: hub.url, cacheDir })).rejects.toBeInstanceOf(UsageError);
    await expect(loadTextRows(REPO, { revision: 'v9', hubUrl: hub.url, cacheDir })).rejects.toThrow(/no data set flytech\/python-codes-25k at revision v9/);
    await expect(loadTextRows(REPO, { split: 'test', hubUrl: hub.url, cacheDir })).rejects.toThrow(/has no data files for default\/test/);
  });

  it('pins a commit sha: offline with the cache, no ref lookup needed', async () => {
    await loadTextRows(REPO, { rows: 4, hubUrl: hub.url, cacheDir });
    const pinned = await loadTextRows(REPO, { rows: 4, revision: PARQUET_SHA, cacheDir, offline: true });
    expect(pinned.provenance.revision).toBe(PARQUET_SHA);
    expect(existsSync(join(cacheDir, 'hub', 'flytech--python-codes-25k', 'refs', 'refs%2Fconvert%2Fparquet.json'))).toBe(true);
  });
});

describe('timeouts and aborts', () => {
  const params = (url: string) => ({
    repo: REPO,
    revision: 'refs/convert/parquet',
    config: 'default',
    split: 'train',
    rows: 5,
    hubUrl: url,
    offline: false,
    cacheDir,
  });

  it('an API call that never answers times out into the one clear error', async () => {
    const slow = await startLocalHub([DATASET]);
    try {
      slow.stall('/revision/refs%2Fconvert%2Fparquet');
      const started = Date.now();
      const error = await pullHubDataset({ ...params(slow.url), requestTimeoutMs: 300 }).catch((e: unknown) => e);
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(error).toBeInstanceOf(DataError);
      expect((error as DataError).message).toMatch(/is not in the cache .* and the hub cannot be reached/);
    } finally {
      await slow.close();
    }
  });

  it('a download that stalls is abandoned and leaves no partial file', async () => {
    const slow = await startLocalHub([DATASET]);
    try {
      slow.stall('/default/train/0000.parquet');
      const error = await pullHubDataset({ ...params(slow.url), stallTimeoutMs: 300 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DataError);
      expect((error as DataError).message).toMatch(/download of default\/train\/0000\.parquet stalled/);
      const files = await allFiles(cacheDir);
      expect(files.filter((name) => name.endsWith('.parquet') || name.endsWith('.incomplete'))).toEqual([]);
    } finally {
      await slow.close();
    }
  });

  it('an abort signal stops a download at once and leaves no partial file', async () => {
    const slow = await startLocalHub([DATASET]);
    try {
      slow.stall('/default/train/0000.parquet');
      const controller = new AbortController();
      setTimeout(() => controller.abort(new Error('interrupted by the test')), 200);
      await expect(loadTextRows(REPO, { rows: 5, hubUrl: slow.url, cacheDir, signal: controller.signal })).rejects.toThrow(/interrupted by the test/);
      const files = await allFiles(cacheDir);
      expect(files.filter((name) => name.endsWith('.parquet') || name.endsWith('.incomplete'))).toEqual([]);
    } finally {
      await slow.close();
    }
  });
});

describe('specs', () => {
  it("the committed specs parse, and a spec's config/split/revision are the defaults for its hub id", async () => {
    const specs = await listDatasetSpecs();
    expect(specs.map((spec) => spec.id).sort()).toEqual(['flytech/python-codes-25k', 'openai/openai_humaneval']);
    const humanevalSha = 'd'.repeat(40);
    const rows = [{ task_id: 'HumanEval/0', prompt: 'def f():\n', canonical_solution: '    return 1\n', test: 'assert f() == 1', entry_point: 'f' }];
    const parquet = new Uint8Array(
      parquetWriteBuffer({
        columnData: Object.keys(rows[0] ?? {}).map((name) => ({ name, data: rows.map((row) => row[name as keyof (typeof rows)[0]]), type: 'STRING' as const })),
      }),
    );
    const humaneval = await startLocalHub([
      {
        repo: 'openai/openai_humaneval',
        refs: { main: humanevalSha },
        commits: { [humanevalSha]: { 'openai_humaneval/test-00000-of-00001.parquet': parquet, 'README.md': new Uint8Array(1) } },
      },
    ]);
    try {
      const loaded = await loadTextRows('openai/openai_humaneval', { hubUrl: humaneval.url, cacheDir });
      expect(loaded.textField).toBe('prompt');
      expect(loaded.texts).toEqual([{ index: 0, text: 'def f():\n' }]);
      expect(loaded.provenance.files.map((file) => file.path)).toEqual(['openai_humaneval/test-00000-of-00001.parquet']);
      expect(humaneval.requests).toContain('GET /api/datasets/openai/openai_humaneval/revision/main');
    } finally {
      await humaneval.close();
    }
  });
});

describe('hubOptionsFromEnv', () => {
  it('reads HF_HUB_OFFLINE, HF_TOKEN (or HUGGING_FACE_HUB_TOKEN) and HF_ENDPOINT', () => {
    expect(hubOptionsFromEnv({})).toEqual({ offline: false });
    expect(hubOptionsFromEnv({ HF_HUB_OFFLINE: '1' }).offline).toBe(true);
    expect(hubOptionsFromEnv({ HF_HUB_OFFLINE: 'TRUE' }).offline).toBe(true);
    expect(hubOptionsFromEnv({ HF_HUB_OFFLINE: '0' }).offline).toBe(false);
    expect(hubOptionsFromEnv({ HUGGING_FACE_HUB_TOKEN: 'hf_old' }).accessToken).toBe('hf_old');
    expect(hubOptionsFromEnv({ HF_TOKEN: 'hf_new', HUGGING_FACE_HUB_TOKEN: 'hf_old' }).accessToken).toBe('hf_new');
  });
});
