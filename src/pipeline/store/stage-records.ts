import { mkdir, open, readFile, stat, truncate, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { RunStoreError } from '../../util/errors.js';
import { log } from '../../util/log.js';
import { RecordChecker, withChecksum } from './record-checksum.js';

export const RECORD_SCHEMA_VERSION = 1;

/** Every record on disk: a schema version, a unique key for its unit of work, and the payload. */
export interface StageRecord {
  v: number;
  key: string;
  [field: string]: unknown;
}

/**
 * One stage's append-only record file (JSON lines). Each record is written whole with one write() and flushed
 * (fdatasync) before the next, so after a crash at most the last line is torn. Opening the file detects a torn
 * or unparsable last line, drops it and truncates the file back to the last complete record.
 * A key seen twice keeps its first record (a re-run unit never duplicates a finished one). Every record carries a
 * checksum of its content (record-checksum.ts), verified whenever the file is read.
 */
export class StageRecordFile {
  private handle: FileHandle | undefined;
  private readonly records = new Map<string, StageRecord>();
  private writeChain: Promise<void> = Promise.resolve();
  /** Bytes of complete records on disk: a failed write is cut back to this. */
  private bytes = 0;

  private constructor(readonly path: string) {}

  static async open(path: string): Promise<StageRecordFile> {
    const file = new StageRecordFile(path);
    await mkdir(dirname(path), { recursive: true });
    await file.load();
    file.handle = await open(path, 'a');
    return file;
  }

  private async load(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw new RunStoreError(`cannot read ${this.path}`, { cause: error, hint: 'check the file permissions of the run directory' });
    }
    let goodBytes = 0;
    let offset = 0;
    const checker = new RecordChecker(this.path);
    const lines = text.split('\n');
    for (let i = 0; i < lines.length; i += 1) {
      const line = lines[i]!;
      const isLast = i === lines.length - 1;
      const lineBytes = Buffer.byteLength(line, 'utf8') + (isLast ? 0 : 1);
      if (isLast && line === '') break;
      const record = isLast ? undefined : parseRecord(line);
      if (!record) {
        const remaining = lines.slice(i + 1).filter((rest) => rest.trim() !== '');
        if (remaining.length > 0) {
          throw new RunStoreError(`${this.path} line ${i + 1} is corrupt (not a complete record) and is not the last line`, {
            hint: 'the run directory was edited or damaged; start over with --fresh or restore the file',
          });
        }
        log.warn(`${this.path}: dropped a torn last record (${lineBytes} bytes) left by an interrupted write`);
        break;
      }
      if (record.v > RECORD_SCHEMA_VERSION) {
        throw new RunStoreError(`${this.path} line ${i + 1} has record schema ${record.v}, newer than this evalpipe (${RECORD_SCHEMA_VERSION})`, {
          hint: 'upgrade evalpipe to read this run directory',
        });
      }
      checker.check(record, i + 1);
      if (!this.records.has(record.key)) this.records.set(record.key, record);
      offset += lineBytes;
      goodBytes = offset;
    }
    const size = (await stat(this.path)).size;
    if (size !== goodBytes) await truncate(this.path, goodBytes);
    this.bytes = goodBytes;
  }

  has(key: string): boolean {
    return this.records.has(key);
  }

  get(key: string): StageRecord | undefined {
    return this.records.get(key);
  }

  get size(): number {
    return this.records.size;
  }

  all(): StageRecord[] {
    return [...this.records.values()];
  }

  /** Append one record (ignored if its key is already complete). Resolves once it is on disk. */
  append(record: Omit<StageRecord, 'v'> & { v?: number }): Promise<void> {
    const full: StageRecord = withChecksum({ ...record, v: RECORD_SCHEMA_VERSION } as StageRecord);
    const write = async (): Promise<void> => {
      if (this.records.has(full.key)) return;
      if (!this.handle) throw new RunStoreError(`${this.path} is closed`);
      const line = `${JSON.stringify(full)}\n`;
      const data = Buffer.from(line, 'utf8');
      try {
        // A nearly full disk can take part of a record (a short write, no error): write the rest, so the record
        // is whole or the retry fails (ENOSPC) and the catch below cuts the file back to the last whole record.
        for (let offset = 0; offset < data.length; ) {
          const { bytesWritten } = await this.handle.write(data, offset, data.length - offset);
          if (bytesWritten <= 0) throw new Error('the write made no progress');
          offset += bytesWritten;
        }
        await this.handle.datasync();
      } catch (error) {
        await truncate(this.path, this.bytes).catch(() => undefined);
        throw new RunStoreError(`cannot write a record to ${this.path}: ${(error as Error).message}`, {
          cause: error,
          hint: 'free disk space (or fix permissions), then run the same command again to resume; finished records are kept',
        });
      }
      this.bytes += data.length;
      this.records.set(full.key, full);
    };
    const next = this.writeChain.then(write);
    this.writeChain = next.catch(() => undefined);
    return next;
  }

  async close(): Promise<void> {
    await this.writeChain;
    await this.handle?.close();
    this.handle = undefined;
  }
}

function parseRecord(line: string): StageRecord | undefined {
  try {
    const value = JSON.parse(line) as unknown;
    if (typeof value !== 'object' || value === null) return undefined;
    const record = value as Partial<StageRecord>;
    if (typeof record.key !== 'string' || typeof record.v !== 'number') return undefined;
    return record as StageRecord;
  } catch {
    return undefined;
  }
}
