import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { Table, Utf8, tableFromArrays, tableToIPC, vectorFromArray } from 'apache-arrow';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataError, UsageError } from '../util/errors.js';
import { DEFAULT_ROWS, loadDatasetRows, loadTextRows } from './load.js';
import { SMOKE_TEXTS } from './smoke-texts.js';

const ROWS = Array.from({ length: 40 }, (_, i) => ({
  instruction: `Write function number ${i}`,
  input: i % 3 === 0 ? '' : `n = ${i}`,
  output: `def f${i}(n):\n    return n * ${i}\n`,
}));

let dir: string;
const file = (name: string): string => join(dir, name);

function jsonl(rows: readonly object[]): string {
  return `${rows.map((row) => JSON.stringify(row)).join('\n')}\n`;
}

function parquetOf(rows: readonly Record<string, string>[], options: { rowGroupSize?: number; codec?: 'GZIP' } = {}): Uint8Array {
  const names = Object.keys(rows[0] ?? {});
  const buffer = parquetWriteBuffer({
    columnData: names.map((name) => ({ name, data: rows.map((row) => row[name] ?? null), type: 'STRING' as const })),
    rowGroupSize: options.rowGroupSize ?? 10,
    ...(options.codec === 'GZIP' ? { codec: 'GZIP' as const, compressors: { GZIP: (input: Uint8Array) => gzipSync(input) } } : {}),
  });
  return new Uint8Array(buffer);
}

function arrowOf(rows: readonly Record<string, string>[]): Uint8Array {
  const names = Object.keys(rows[0] ?? {});
  return tableToIPC(tableFromArrays(Object.fromEntries(names.map((name) => [name, rows.map((row) => row[name] ?? '')]))), 'file');
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'evalpipe-datasets-'));
  await writeFile(file('rows.jsonl'), jsonl(ROWS));
  await writeFile(file('rows.jsonl.gz'), gzipSync(jsonl(ROWS)));
  await writeFile(file('rows.parquet'), parquetOf(ROWS));
  await writeFile(file('rows-gzip.parquet'), parquetOf(ROWS, { codec: 'GZIP' }));
  await writeFile(file('rows.arrow'), arrowOf(ROWS));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('local files', () => {
  it.each(['rows.jsonl', 'rows.jsonl.gz', 'rows.parquet', 'rows-gzip.parquet', 'rows.arrow'])(
    '%s reads the first N rows with the same content hash',
    async (name) => {
      const reference = await loadDatasetRows(file('rows.jsonl'), { rows: 25 });
      const loaded = await loadDatasetRows(file(name), { rows: 25 });
      expect(loaded.rows).toHaveLength(25);
      expect(loaded.rows[24]).toEqual(ROWS[24]);
      expect(loaded.columns).toEqual(['instruction', 'input', 'output']);
      expect(loaded.table.numRows).toBe(25);
      expect(loaded.table.getChild('output')?.get(7)).toBe(ROWS[7]?.output);
      expect(loaded.provenance.source).toBe('local');
      expect(loaded.provenance.rowCount).toBe(25);
      expect(loaded.provenance.contentSha256).toBe(reference.provenance.contentSha256);
      const bytes = await readFile(file(name));
      expect(loaded.provenance.files).toEqual([
        { path: file(name), bytes: bytes.length, sha256: (await import('node:crypto')).createHash('sha256').update(bytes).digest('hex') },
      ]);
    },
  );

  it('takes every row when the file has fewer than --rows, and 512 by default', async () => {
    const loaded = await loadDatasetRows(file('rows.parquet'));
    expect(DEFAULT_ROWS).toBe(512);
    expect(loaded.rows).toHaveLength(ROWS.length);
    const fewer = await loadDatasetRows(file('rows.parquet'), { rows: 3 });
    expect(fewer.provenance.contentSha256).not.toBe(loaded.provenance.contentSha256);
  });

  it('reads a jsonl with CRLF line ends, blank lines and no final newline', async () => {
    await writeFile(file('crlf.jsonl'), `{"text":"a = 1"}\r\n\r\n{"text":"b = 2"}`);
    const loaded = await loadTextRows(file('crlf.jsonl'), {});
    expect(loaded.texts).toEqual([
      { index: 0, text: 'a = 1' },
      { index: 1, text: 'b = 2' },
    ]);
    expect(loaded.textField).toBe('text');
  });
});

describe('text fields', () => {
  it('picks a column or renders a template with escapes and literal braces', async () => {
    const column = await loadTextRows(file('rows.jsonl'), { rows: 2, textField: 'output' });
    expect(column.texts[1]).toEqual({ index: 1, text: ROWS[1]?.output });
    const template = await loadTextRows(file('rows.parquet'), { rows: 2, textField: '# {instruction}\\n{output}{{end}}' });
    expect(template.texts[0]?.text).toBe(`# ${ROWS[0]?.instruction}\n${ROWS[0]?.output}{end}`);
    expect(template.textField).toBe('# {instruction}\\n{output}{{end}}');
  });

  it('names the missing column and lists the available ones', async () => {
    const error = await loadTextRows(file('rows.arrow'), { textField: 'code' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UsageError);
    expect((error as UsageError).message).toContain('has no column "code" (available: instruction, input, output)');
    expect((error as UsageError).hint).toContain('--text-field');
    const template = await loadTextRows(file('rows.jsonl'), { textField: '{instruction}\\n{solution}' }).catch((e: unknown) => e);
    expect((template as UsageError).message).toContain('no column "solution"');
  });

  it('rejects a malformed template', async () => {
    await expect(loadTextRows(file('rows.jsonl'), { textField: '{instruction' })).rejects.toThrow(/unclosed or empty/);
    await expect(loadTextRows(file('rows.jsonl'), { textField: 'a } b' })).rejects.toThrow(/stray }/);
    await expect(loadTextRows(file('rows.jsonl'), { textField: ' ' })).rejects.toThrow(/--text-field is empty/);
  });

  it('fails on an empty row naming its index, or skips empty rows when asked', async () => {
    const error = await loadTextRows(file('rows.parquet'), { textField: 'input' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DataError);
    expect((error as DataError).message).toContain('row 0 has an empty text field "input"');
    expect((error as DataError).hint).toMatch(/--text-field.*--skip-empty/);
    const skipped = await loadTextRows(file('rows.parquet'), { textField: 'input', skipEmpty: true, rows: 10 });
    expect(skipped.skippedEmpty).toEqual([0, 3, 6, 9]);
    expect(skipped.texts.map((row) => row.index)).toEqual([1, 2, 4, 5, 7, 8]);
  });

  it('treats null and whitespace-only cells as empty', async () => {
    await writeFile(file('nulls.jsonl'), jsonl([{ text: 'x = 1' }, { text: null }, { text: '  \n ' }]));
    await expect(loadTextRows(file('nulls.jsonl'), {})).rejects.toThrow(/row 1 has an empty text field "text"/);
    const kept = await loadTextRows(file('nulls.jsonl'), { skipEmpty: true });
    expect(kept.skippedEmpty).toEqual([1, 2]);
  });
});

describe('bad input', () => {
  it('rejects --rows 0, negative and fractional counts', async () => {
    for (const rows of [0, -1, 2.5, Number.NaN]) {
      const error = await loadDatasetRows(file('rows.jsonl'), { rows }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UsageError);
      expect((error as UsageError).message).toMatch(/--rows must be a positive whole number/);
    }
  });

  it('names the line of non-UTF-8 bytes in jsonl and jsonl.gz', async () => {
    const bad = Buffer.concat([Buffer.from('{"text":"ok"}\n{"text":"caf'), Buffer.from([0xe9]), Buffer.from('"}\n')]);
    await writeFile(file('latin1.jsonl'), bad);
    await writeFile(file('latin1.jsonl.gz'), gzipSync(bad));
    for (const name of ['latin1.jsonl', 'latin1.jsonl.gz']) {
      const error = await loadTextRows(file(name), {}).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DataError);
      expect((error as DataError).message).toBe(`${file(name)} line 2 is not valid UTF-8`);
      expect((error as DataError).hint).toMatch(/re-encode the file as UTF-8/);
    }
  });

  it('names the row and column of non-UTF-8 bytes in parquet and arrow', async () => {
    const good = new TextEncoder().encode('fine');
    const invalid = new Uint8Array([0x63, 0x61, 0x66, 0xe9]);
    const parquet = parquetWriteBuffer({ columnData: [{ name: 'text', data: [good, good, invalid], type: 'BYTE_ARRAY' }] });
    await writeFile(file('latin1.parquet'), new Uint8Array(parquet));
    await expect(loadTextRows(file('latin1.parquet'), {})).rejects.toThrow(/row 2 column "text" is not valid UTF-8/);
    // Only the rows asked for are decoded, so the first two rows read cleanly.
    expect((await loadTextRows(file('latin1.parquet'), { rows: 2 })).texts).toHaveLength(2);

    const arrow = Buffer.from(arrowOf([{ text: 'aaaa' }, { text: 'bbbb' }]));
    const at = arrow.indexOf(Buffer.from('bbbb'));
    arrow[at + 3] = 0xff;
    await writeFile(file('latin1.arrow'), arrow);
    await expect(loadTextRows(file('latin1.arrow'), {})).rejects.toThrow(/row 1 column "text" is not valid UTF-8/);

    // The same with a plain (not dictionary-encoded) Utf8 column.
    const plain = Buffer.from(tableToIPC(new Table({ text: vectorFromArray(['aaaa', 'cccc', 'dddd'], new Utf8()) }), 'file'));
    plain[plain.indexOf(Buffer.from('dddd')) + 1] = 0xc3;
    await writeFile(file('latin1-plain.arrow'), plain);
    await expect(loadTextRows(file('latin1-plain.arrow'), {})).rejects.toThrow(/row 2 column "text" is not valid UTF-8/);
  });

  it('explains unreadable files in one line', async () => {
    await writeFile(file('broken.jsonl'), '{"text": "a"}\n{"text": \n');
    await expect(loadDatasetRows(file('broken.jsonl'), {})).rejects.toThrow(/line 2 is not valid JSON/);
    await writeFile(file('array.jsonl'), '[1, 2]\n');
    await expect(loadDatasetRows(file('array.jsonl'), {})).rejects.toThrow(/line 1 is not a JSON object/);
    await writeFile(file('broken.parquet'), 'PAR1 not really');
    await expect(loadDatasetRows(file('broken.parquet'), {})).rejects.toThrow(/is not a readable parquet file/);
    await writeFile(file('broken.arrow'), 'nope');
    await expect(loadDatasetRows(file('broken.arrow'), {})).rejects.toThrow(/is not a readable Arrow IPC file/);
    await writeFile(file('broken.jsonl.gz'), 'not gzip at all');
    await expect(loadDatasetRows(file('broken.jsonl.gz'), {})).rejects.toThrow(/is not a readable gzip file/);
  });

  it('rejects missing files, unknown file types and non-ids', async () => {
    await expect(loadDatasetRows(file('absent.parquet'), {})).rejects.toThrow(/does not exist/);
    await writeFile(file('rows.csv'), 'a,b\n');
    await expect(loadDatasetRows(file('rows.csv'), {})).rejects.toThrow(/unknown file type/);
    await expect(loadDatasetRows('not a data set', {})).rejects.toThrow(/neither a hub data set id/);
    await expect(loadDatasetRows('builtin:nope', {})).rejects.toThrow(/unknown built-in data set/);
  });
});

describe('builtin:smoke', () => {
  it('serves our own Python texts, some long enough to need several windows', async () => {
    const loaded = await loadTextRows('builtin:smoke', {});
    expect(loaded.texts).toHaveLength(SMOKE_TEXTS.length);
    expect(SMOKE_TEXTS.length).toBeGreaterThanOrEqual(20);
    expect(loaded.textField).toBe('text');
    expect(loaded.provenance).toMatchObject({ source: 'builtin', id: 'builtin:smoke', files: [], rowCount: SMOKE_TEXTS.length });
    expect(loaded.texts.filter((row) => row.text.length > 600).length).toBeGreaterThanOrEqual(3);
    expect(loaded.texts.every((row) => /\b(def|class)\b/.test(row.text))).toBe(true);
    const again = await loadTextRows('builtin:smoke', { rows: 5 });
    expect(again.texts).toHaveLength(5);
  });
});
