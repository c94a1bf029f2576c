import { mkdir, open, readFile, stat, truncate, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { RunStoreError } from '../../util/errors.js';
import { log } from '../../util/log.js';
import { withChecksum } from './record-checksum.js';
import type { RecordKind, StoredRecord } from './record-kind.js';
import { RECORD_SCHEMA_VERSION, parseRecordLines } from './record-lines.js';

/**
 * One stage's append-only record file (JSON lines). Each record is written whole with one write() and flushed
 * (fdatasync) before the next, so after a crash at most the last line is torn. Opening the file detects a torn
 * or unparsable last line, drops it and truncates the file back to the last complete record.
 * A key seen twice keeps its first record (a re-run unit never duplicates a finished one). Every record carries a
 * checksum of its content (record-checksum.ts), verified whenever the file is read, and is checked against the
 * stage's record kind (the task's declaration of the fields it writes).
 */
export class StageRecordFile<R extends object = Record<string, unknown>> {
  private handle: FileHandle | undefined;
  private records = new Map<string, StoredRecord<R>>();
  private writeChain: Promise<void> = Promise.resolve();
  /** Bytes of complete records on disk: a failed write is cut back to this. */
  private bytes = 0;

  private constructor(
    readonly path: string,
    private readonly kind: RecordKind<R> | undefined,
  ) {}

  static async open<R extends object = Record<string, unknown>>(path: string, kind?: RecordKind<R>): Promise<StageRecordFile<R>> {
    const file = new StageRecordFile<R>(path, kind);
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
    const parsed = parseRecordLines(text, this.path, this.kind);
    if (parsed.tornBytes > 0) log.warn(`${this.path}: dropped a torn last record (${parsed.tornBytes} bytes) left by an interrupted write`);
    const size = (await stat(this.path)).size;
    if (size !== parsed.completeBytes) await truncate(this.path, parsed.completeBytes);
    this.records = parsed.records;
    this.bytes = parsed.completeBytes;
  }

  has(key: string): boolean {
    return this.records.has(key);
  }

  get(key: string): StoredRecord<R> | undefined {
    return this.records.get(key);
  }

  get size(): number {
    return this.records.size;
  }

  all(): StoredRecord<R>[] {
    return [...this.records.values()];
  }

  /** Append one record (ignored if its key is already complete). Resolves once it is on disk. */
  append(record: R & { key: string }): Promise<void> {
    const full = withChecksum({ ...record, v: RECORD_SCHEMA_VERSION }) as unknown as StoredRecord<R>;
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
