import { appendFile, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readStageRecordsReadOnly } from './run-reader.js';
import { StageRecordFile } from './stage-records.js';
import { RunStoreError } from '../../util/errors.js';

async function tempFile(): Promise<string> {
  return join(await mkdtemp(join(tmpdir(), 'evalpipe-records-')), 'records', 'stage.jsonl');
}

describe('StageRecordFile', () => {
  it('appends whole records and reads them back after reopening', async () => {
    const path = await tempFile();
    const file = await StageRecordFile.open(path);
    await file.append({ key: 'row:0', nll_sum: 1.5 });
    await file.append({ key: 'row:1', nll_sum: 2.5 });
    await file.close();
    const reopened = await StageRecordFile.open(path);
    expect(reopened.all().map((record) => record.key)).toEqual(['row:0', 'row:1']);
    expect(reopened.get('row:1')).toMatchObject({ v: 1, nll_sum: 2.5 });
    await reopened.close();
  });

  it('drops a torn last line, truncates it away, and appends cleanly after it', async () => {
    const path = await tempFile();
    const file = await StageRecordFile.open(path);
    await file.append({ key: 'row:0', value: 1 });
    await file.close();
    await appendFile(path, '{"v":1,"key":"row:1","val');
    const reopened = await StageRecordFile.open(path);
    expect(reopened.size).toBe(1);
    await reopened.append({ key: 'row:1', value: 2 });
    await reopened.close();
    const lines = (await readFile(path, 'utf8')).trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines.map((line) => JSON.parse(line).key)).toEqual(['row:0', 'row:1']);
  });

  it('treats a last record without its newline as torn', async () => {
    const path = await tempFile();
    const file = await StageRecordFile.open(path);
    await file.append({ key: 'a' });
    await file.close();
    await appendFile(path, '{"v":1,"key":"b"}');
    const reopened = await StageRecordFile.open(path);
    expect(reopened.has('b')).toBe(false);
    await reopened.close();
  });

  it('refuses a corrupt line in the middle of the file', async () => {
    const path = await tempFile();
    const file = await StageRecordFile.open(path);
    await file.close();
    await writeFile(path, '{"v":1,"key":"a"}\ngarbage\n{"v":1,"key":"c"}\n');
    await expect(StageRecordFile.open(path)).rejects.toThrow(/line 2 is corrupt/);
  });

  it('refuses records from a newer schema', async () => {
    const path = await tempFile();
    const file = await StageRecordFile.open(path);
    await file.close();
    await writeFile(path, '{"v":99,"key":"a"}\n');
    await expect(StageRecordFile.open(path)).rejects.toBeInstanceOf(RunStoreError);
  });

  it('never duplicates a key: the first record wins', async () => {
    const path = await tempFile();
    const file = await StageRecordFile.open(path);
    await Promise.all([file.append({ key: 'x', n: 1 }), file.append({ key: 'x', n: 2 })]);
    await file.close();
    const text = await readFile(path, 'utf8');
    expect(text.trimEnd().split('\n')).toHaveLength(1);
    expect(JSON.parse(text).n).toBe(1);
  });

  it('checks every record against its checksum: an edited value, or a record without one among checked ones, is refused', async () => {
    const path = await tempFile();
    const file = await StageRecordFile.open(path);
    await file.append({ key: 'row:0', nll_sum: 3536.797351360321 });
    await file.append({ key: 'row:1', nll_sum: 2.5 });
    await file.close();
    const text = await readFile(path, 'utf8');
    expect(JSON.parse(text.split('\n')[0]!).sum).toMatch(/^[0-9a-f]{16}$/);
    expect((await StageRecordFile.open(path)).size).toBe(2);
    await writeFile(path, text.replace('"nll_sum":2.5', '"nll_sum":0'));
    await expect(StageRecordFile.open(path)).rejects.toThrow(/line 2 does not match its checksum: it was edited or damaged/);
    await expect(readStageRecordsReadOnly(path)).rejects.toThrow(/line 2 does not match its checksum/);
    await writeFile(path, `${text}{"v":1,"key":"row:2","nll_sum":1}\n`);
    await expect(StageRecordFile.open(path)).rejects.toThrow(/line 3 has no checksum, unlike the records before it/);
  });
});
