import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EXECUTION_RECORDS } from '../../tasks/humaneval/records.js';
import { PERPLEXITY_RECORDS } from '../../tasks/perplexity/records.js';
import { withChecksum } from './record-checksum.js';
import { readStageRecordsReadOnly } from './run-reader.js';
import { StageRecordFile } from './stage-records.js';

async function recordFile(lines: Record<string, unknown>[], tail = ''): Promise<string> {
  const path = join(await mkdtemp(join(tmpdir(), 'evalpipe-kinds-')), 'execute.jsonl');
  await writeFile(path, lines.map((line) => `${JSON.stringify(withChecksum({ v: 1, ...line }))}\n`).join('') + tail);
  return path;
}

const verdict = (index: number, extra: Record<string, unknown> = {}) => ({
  key: `exec:HumanEval/0:${index}`,
  task_id: 'HumanEval/0',
  sample_index: index,
  status: 'passed',
  passed: true,
  ...extra,
});

describe('typed records', () => {
  it('types records by their kind and reads them the same way in the writer and the read-only reader', async () => {
    const path = await recordFile([verdict(0), verdict(1, { passed: false, status: 'failed' })], '{"v":1,"key":"exec:Hu');
    const before = await readFile(path, 'utf8');
    const read = await readStageRecordsReadOnly(path, EXECUTION_RECORDS);
    expect([...read.values()].map((record) => [record.sample_index, record.passed])).toEqual([
      [0, true],
      [1, false],
    ]);
    expect(await readFile(path, 'utf8')).toBe(before); // the reader leaves a torn tail alone
    const file = await StageRecordFile.open(path, EXECUTION_RECORDS);
    expect(file.all().map((record) => record.status)).toEqual(['passed', 'failed']);
    await file.close();
    expect((await readFile(path, 'utf8')).length).toBeLessThan(before.length); // the writer cuts it away
  });

  it('refuses a record that lacks a field its kind declares, or has one of the wrong type, naming file, line and field', async () => {
    const missing = await recordFile([verdict(0), { key: 'exec:HumanEval/0:1', task_id: 'HumanEval/0', sample_index: 1, status: 'passed' }]);
    const message = `${missing} line 2 is not a valid execute record: field "passed" is missing`;
    await expect(readStageRecordsReadOnly(missing, EXECUTION_RECORDS)).rejects.toThrow(message);
    await expect(StageRecordFile.open(missing, EXECUTION_RECORDS)).rejects.toThrow(message);

    const wrongType = await recordFile([{ key: 'row:0', index: 0, nll_sum: '12.5', n_scored_tokens: 10, n_bytes: 40 }]);
    await expect(readStageRecordsReadOnly(wrongType, PERPLEXITY_RECORDS)).rejects.toThrow(
      `${wrongType} line 1 is not a valid perplexity record: field "nll_sum" should be number, got "12.5"`,
    );
  });
});
