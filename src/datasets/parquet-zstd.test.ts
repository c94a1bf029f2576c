import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parquetMetadata } from 'hyparquet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codeLikeRows, zstdFrameBlocks, zstdParquet, type ZstdPage } from '../../test/support/zstd-parquet.js';
import { loadDatasetRows } from './load.js';
import { startLocalHub } from '../../test/support/local-hub.js';

// ZSTD is a common codec of parquet on the hub, and Node's zlib has none: hyparquet-compressors (fzstd) decodes
// it. These files are compressed by the zstd CLI, so a missing zstd fails each test here with the install hint
// (each one builds the files through fixture()); nothing is skipped.

const ROWS = codeLikeRows(1200, 20260101);
const ROW_GROUP = 300;
const jsonl = `${ROWS.map((row) => JSON.stringify(row)).join('\n')}\n`;

let dir: string;
const file = (name: string): string => join(dir, name);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'evalpipe-zstd-'));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** rows.parquet (ZSTD, four row groups) and rows.jsonl of the same rows, written once on first use. */
let built: Promise<{ parquet: Uint8Array; pages: ZstdPage[] }> | undefined;
function fixture(): Promise<{ parquet: Uint8Array; pages: ZstdPage[] }> {
  built ??= (async () => {
    const { bytes, pages } = zstdParquet(ROWS, { rowGroupSize: ROW_GROUP, level: 3 });
    await writeFile(file('rows.parquet'), bytes);
    await writeFile(file('rows.jsonl'), jsonl);
    return { parquet: bytes, pages };
  })();
  return built;
}

describe('ZSTD parquet', () => {
  it('is genuinely ZSTD: every column chunk says so, and every page is a zstd frame of compressed blocks', async () => {
    const { parquet, pages } = await fixture();
    expect(Buffer.byteLength(jsonl)).toBeGreaterThan(300_000);
    const metadata = parquetMetadata(parquet.buffer.slice(parquet.byteOffset, parquet.byteOffset + parquet.byteLength) as ArrayBuffer);
    expect(metadata.row_groups).toHaveLength(ROWS.length / ROW_GROUP);
    const chunks = metadata.row_groups.flatMap((group) => group.columns.map((column) => column.meta_data));
    expect(chunks).toHaveLength(3 * metadata.row_groups.length);
    for (const chunk of chunks) expect(chunk?.codec).toBe('ZSTD');
    const output = chunks.filter((chunk) => chunk?.path_in_schema.join('.') === 'output');
    for (const chunk of output) expect(Number(chunk?.total_compressed_size)).toBeLessThan(Number(chunk?.total_uncompressed_size) / 2);

    // Every page the writer compressed is in the file as the frame zstd made, so the reader gets real frames.
    expect(pages.length).toBeGreaterThanOrEqual(chunks.length);
    const bytes = Buffer.from(parquet);
    for (const page of pages) expect(bytes.indexOf(page.frame)).toBeGreaterThan(0);
    // Pages of any size are entropy-coded blocks, not stored ones; pages over 128 KiB span several blocks.
    const blocks = pages.map((page) => ({ inputBytes: page.inputBytes, types: zstdFrameBlocks(page.frame) }));
    for (const page of blocks.filter((page) => page.inputBytes >= 1024)) expect(page.types).toContain('compressed');
    expect(blocks.some((page) => page.types.filter((type) => type === 'compressed').length >= 2)).toBe(true);
  });

  it('loads exactly the rows, and the content hash, of the same data as .jsonl', async () => {
    await fixture();
    const fromJsonl = await loadDatasetRows(file('rows.jsonl'), { rows: ROWS.length });
    const fromParquet = await loadDatasetRows(file('rows.parquet'), { rows: ROWS.length });
    expect(fromParquet.rows).toHaveLength(ROWS.length);
    expect(fromParquet.rows).toEqual(ROWS);
    expect(fromParquet.columns).toEqual(['instruction', 'input', 'output']);
    expect(fromParquet.table.getChild('output')?.get(ROWS.length - 1)).toBe(ROWS.at(-1)?.output);
    expect(fromParquet.provenance.contentSha256).toBe(fromJsonl.provenance.contentSha256);

    // Part way into the second row group: only the row groups holding the rows are decoded.
    const partJsonl = await loadDatasetRows(file('rows.jsonl'), { rows: ROW_GROUP + 50 });
    const partParquet = await loadDatasetRows(file('rows.parquet'), { rows: ROW_GROUP + 50 });
    expect(partParquet.rows).toEqual(ROWS.slice(0, ROW_GROUP + 50));
    expect(partParquet.provenance.contentSha256).toBe(partJsonl.provenance.contentSha256);
  });

  it('comes through the hub path (refs/convert/parquet) with the same rows and hash as the JSONL on main', async () => {
    const { parquet } = await fixture();
    const repo = 'someone/zstd-codes';
    const parquetSha = 'c'.repeat(40);
    const mainSha = 'e'.repeat(40);
    const hub = await startLocalHub([
      {
        repo,
        refs: { 'refs/convert/parquet': parquetSha, main: mainSha },
        commits: {
          [parquetSha]: { 'default/train/0000.parquet': parquet },
          [mainSha]: { 'codes.jsonl': new TextEncoder().encode(jsonl) },
        },
      },
    ]);
    const cacheDir = file('hub-cache');
    try {
      const fromParquet = await loadDatasetRows(repo, { rows: 1000, hubUrl: hub.url, cacheDir });
      expect(fromParquet.provenance).toMatchObject({ source: 'hub', revision: parquetSha, rowCount: 1000 });
      expect(fromParquet.provenance.files.map((entry) => entry.path)).toEqual(['default/train/0000.parquet']);
      expect(fromParquet.rows).toEqual(ROWS.slice(0, 1000));
      const fromJsonl = await loadDatasetRows(repo, { rows: 1000, revision: 'main', hubUrl: hub.url, cacheDir });
      expect(fromJsonl.provenance.files.map((entry) => entry.path)).toEqual(['codes.jsonl']);
      expect(fromParquet.provenance.contentSha256).toBe(fromJsonl.provenance.contentSha256);
    } finally {
      await hub.close();
    }
  });
});
