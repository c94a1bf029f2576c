import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalHub, type LocalHub } from '../../../test/support/local-hub.js';
import { cliInProcess } from '../../../test/support/cli-in-process.js';

const SHA = 'c'.repeat(40);
let hub: LocalHub;
let dir: string;

const cli = cliInProcess;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'evalpipe-datasets-cli-'));
  const rows = Array.from({ length: 12 }, (_, i) => ({ instruction: `task ${i}`, input: '', output: `print(${i})`, text: `task ${i}\nprint(${i})` }));
  const parquet = parquetWriteBuffer({
    columnData: ['instruction', 'input', 'output', 'text'].map((name) => ({
      name,
      data: rows.map((row) => row[name as keyof typeof row]),
      type: 'STRING' as const,
    })),
  });
  hub = await startLocalHub([
    { repo: 'flytech/python-codes-25k', refs: { 'refs/convert/parquet': SHA }, commits: { [SHA]: { 'default/train/0000.parquet': new Uint8Array(parquet) } } },
  ]);
});

afterAll(async () => {
  await hub.close();
  await rm(dir, { recursive: true, force: true });
});

describe('evalpipe datasets', () => {
  it('pull prints the revision, file, size and hashes; HF_ENDPOINT and HF_HUB_OFFLINE are honoured', async () => {
    const cache = join(dir, 'cache');
    const pulled = await cli(['datasets', 'pull', 'flytech/python-codes-25k', '--rows', '5', '--cache-dir', cache], {
      HF_ENDPOINT: hub.url,
      HF_HUB_OFFLINE: undefined,
    });
    expect(pulled.code).toBe(0);
    expect(pulled.stdout).toContain(`hub flytech/python-codes-25k @ ${SHA}`);
    expect(pulled.stdout).toMatch(/default\/train\/0000\.parquet {2}[\d.]+ (B|KiB) {2}sha256 [0-9a-f]{64}/);
    expect(pulled.stdout).toContain('rows 5, texts 5, text field "output"');

    const offline = await cli(['--json', 'datasets', 'pull', 'flytech/python-codes-25k', '--rows', '5', '--cache-dir', cache], {
      HF_ENDPOINT: 'http://127.0.0.1:9',
      HF_HUB_OFFLINE: '1',
    });
    expect(offline.code).toBe(0);
    const summary = JSON.parse(offline.stdout) as { revision: string; rows: number; text_field: string };
    expect(summary).toMatchObject({ revision: SHA, rows: 5, text_field: 'output' });

    const listed = await cli(['datasets', 'list', '--cache-dir', cache]);
    expect(listed.stdout).toContain(`flytech/python-codes-25k @ ${SHA} (refs/convert/parquet)`);
  });

  it('prints one line for each bad input and exits non-zero', async () => {
    const cold = await cli(['datasets', 'pull', 'flytech/python-codes-25k', '--cache-dir', join(dir, 'empty')], { HF_HUB_OFFLINE: '1' });
    expect(cold.code).toBe(1);
    expect(cold.stderr.trim().split('\n')).toHaveLength(1);
    expect(cold.stderr).toMatch(/is not in the cache .*HF_HUB_OFFLINE=1.*--dataset/);

    const zero = await cli(['datasets', 'pull', 'builtin:smoke', '--rows', '0']);
    expect(zero.code).toBe(2); // every bad value exits 2
    expect(zero.stderr).toMatch(/^evalpipe: --rows must be a positive whole number, got 0 — /);

    await writeFile(join(dir, 'rows.jsonl'), '{"code": "x = 1"}\n');
    const field = await cli(['datasets', 'pull', join(dir, 'rows.jsonl'), '--text-field', 'output']);
    expect(field.code).toBe(2); // --text-field names a column that is not there: a bad value
    expect(field.stderr).toContain('has no column "output" (available: code)');
  });

  it('show prints the texts that would be scored', async () => {
    const shown = await cli(['datasets', 'show', 'builtin:smoke', '--rows', '2']);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toContain('--- row 0 (');
    expect(shown.stdout).toContain('def add(a, b):');
    expect(shown.stdout).toContain('--- row 1 (');
    expect(shown.stdout).not.toContain('--- row 2 (');
  });
});
