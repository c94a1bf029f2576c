import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { DataError } from '../util/errors.js';
import { decodeUtf8Strict, UTF8_HINT } from './utf8.js';

export interface JsonlRead {
  rows: Record<string, unknown>[];
  /** Column names in first-seen order over the rows read. */
  columns: string[];
}

/**
 * Read the first `limit` JSON objects of a .jsonl or .jsonl.gz file, one per line, stopping (and closing the
 * file) as soon as it has them. Blank lines are skipped; every other line must be a UTF-8 JSON object.
 */
export async function readJsonl(path: string, options: { gzip: boolean; limit: number; signal?: AbortSignal }): Promise<JsonlRead> {
  const file = createReadStream(path, { signal: options.signal });
  let source: Readable = file;
  if (options.gzip) {
    const gunzip = createGunzip();
    file.on('error', (error) => gunzip.destroy(error));
    source = file.pipe(gunzip);
  }
  const rows: Record<string, unknown>[] = [];
  const columns = new Set<string>();
  let lineNumber = 0;
  let pending: Buffer[] = [];

  const takeLine = (bytes: Buffer): void => {
    lineNumber += 1;
    const line = decodeUtf8Strict(bytes);
    if (line === undefined) {
      throw new DataError(`${path} line ${lineNumber} is not valid UTF-8`, { hint: UTF8_HINT });
    }
    if (line.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (error) {
      throw new DataError(`${path} line ${lineNumber} is not valid JSON (${(error as Error).message})`, {
        hint: 'each line of a .jsonl file must be one JSON object; fix or drop that line',
      });
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new DataError(`${path} line ${lineNumber} is not a JSON object`, {
        hint: 'each line of a .jsonl file must be one object such as {"text": "..."}',
      });
    }
    for (const key of Object.keys(value)) columns.add(key);
    rows.push(value as Record<string, unknown>);
  };

  try {
    for await (const chunk of source) {
      let buffer = chunk as Buffer;
      let newline = buffer.indexOf(0x0a);
      while (newline !== -1) {
        pending.push(buffer.subarray(0, newline));
        takeLine(stripCarriageReturn(Buffer.concat(pending)));
        pending = [];
        if (rows.length >= options.limit) return { rows, columns: [...columns] };
        buffer = buffer.subarray(newline + 1);
        newline = buffer.indexOf(0x0a);
      }
      if (buffer.length > 0) pending.push(buffer);
    }
    if (pending.length > 0 && rows.length < options.limit) takeLine(stripCarriageReturn(Buffer.concat(pending)));
    return { rows, columns: [...columns] };
  } catch (error) {
    if (error instanceof DataError) throw error;
    if (options.signal?.aborted) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    if (options.gzip && typeof code === 'string' && code.startsWith('Z_')) {
      throw new DataError(`${path} is not a readable gzip file (${(error as Error).message})`, {
        hint: 'check the download, or give the uncompressed .jsonl file',
        cause: error,
      });
    }
    throw new DataError(`cannot read ${path}: ${(error as Error).message}`, { hint: 'check the path and its permissions', cause: error });
  } finally {
    source.destroy();
    file.destroy();
  }
}

function stripCarriageReturn(bytes: Buffer): Buffer {
  return bytes.length > 0 && bytes[bytes.length - 1] === 0x0d ? bytes.subarray(0, bytes.length - 1) : bytes;
}
