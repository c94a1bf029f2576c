import { execFileSync } from 'node:child_process';
import { parquetWriteBuffer } from 'hyparquet-writer';

/**
 * ZSTD-compressed parquet for the data-set tests. Node 20's zlib has no zstd, so pages are compressed by the
 * `zstd` command-line tool (Debian package `zstd`; scripts/test.sh installs it): the files carry real zstd
 * frames, written by the reference implementation, not something our own reader's library produced.
 */

export const ZSTD_MISSING_HINT =
  'the `zstd` command-line tool is not installed, and the ZSTD parquet tests need it to write real ZSTD pages: ' +
  'install it with `sudo bash scripts/install-zstd.sh` (apt-get install zstd); scripts/test.sh does this itself';

/** One page as the writer handed it to the compressor, and the zstd frame that came back. */
export interface ZstdPage {
  inputBytes: number;
  frame: Uint8Array;
}

/** `zstd -q -c -<level>` over `input`. Throws an error that says how to install zstd when it is missing. */
export function zstdCli(input: Uint8Array, level: number): Uint8Array {
  try {
    return new Uint8Array(execFileSync('zstd', ['-q', '-c', `-${level}`], { input, maxBuffer: 256 * 1024 * 1024 }));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(ZSTD_MISSING_HINT, { cause: error });
    throw error;
  }
}

/** String columns written with hyparquet-writer, every page compressed by the zstd CLI. */
export function zstdParquet(
  rows: readonly Record<string, string>[],
  options: { rowGroupSize: number; level?: number },
): { bytes: Uint8Array; pages: ZstdPage[] } {
  const names = Object.keys(rows[0] ?? {});
  const pages: ZstdPage[] = [];
  const buffer = parquetWriteBuffer({
    columnData: names.map((name) => ({ name, data: rows.map((row) => row[name] ?? null), type: 'STRING' as const })),
    rowGroupSize: options.rowGroupSize,
    codec: 'ZSTD',
    compressors: {
      ZSTD: (input: Uint8Array) => {
        const frame = zstdCli(input, options.level ?? 3);
        pages.push({ inputBytes: input.length, frame });
        return frame;
      },
    },
  });
  return { bytes: new Uint8Array(buffer), pages };
}

export type ZstdBlockType = 'raw' | 'rle' | 'compressed';

/**
 * The block types of one zstd frame, walking its headers (RFC 8878 section 3.1.1); throws unless the frame is
 * exactly one well-formed frame. A frame of only raw blocks is stored, not compressed.
 */
export function zstdFrameBlocks(frame: Uint8Array): ZstdBlockType[] {
  const byte = (at: number): number => {
    const value = frame[at];
    if (value === undefined) throw new Error(`zstd frame ends at byte ${frame.length}, expected byte ${at}`);
    return value;
  };
  if (byte(0) !== 0x28 || byte(1) !== 0xb5 || byte(2) !== 0x2f || byte(3) !== 0xfd) throw new Error('not a zstd frame (bad magic)');
  const descriptor = byte(4);
  const singleSegment = (descriptor >> 5) & 1;
  const checksum = (descriptor >> 2) & 1;
  const dictionaryIdBytes = [0, 1, 2, 4][descriptor & 3] ?? 0;
  const contentSizeBytes = [singleSegment ? 1 : 0, 2, 4, 8][descriptor >> 6] ?? 0;
  let at = 5 + (singleSegment ? 0 : 1) + dictionaryIdBytes + contentSizeBytes;
  const types: ZstdBlockType[] = [];
  for (;;) {
    const header = byte(at) | (byte(at + 1) << 8) | (byte(at + 2) << 16);
    at += 3;
    const type = (['raw', 'rle', 'compressed'] as const)[(header >> 1) & 3];
    if (type === undefined) throw new Error('zstd block of the reserved type');
    types.push(type);
    at += type === 'rle' ? 1 : header >>> 3;
    if (header & 1) break;
  }
  at += checksum ? 4 : 0;
  if (at !== frame.length) throw new Error(`zstd frame is ${frame.length} bytes, its headers say ${at}`);
  return types;
}

/**
 * `count` rows of Python-like text from a seeded generator (mulberry32): varied identifiers, numbers, docstrings
 * with non-ASCII words, so that zstd has literals to entropy-code and matches to find, as in real code data.
 */
export function codeLikeRows(count: number, seed = 1): Record<string, string>[] {
  let state = seed >>> 0;
  const random = (): number => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const words = ['count', 'total', 'items', 'value', 'index', 'résumé', 'naïve', 'größe', 'データ', 'значение', 'λ', '✓'];
  const ops = ['+', '-', '*', '//', '%', '<<', '^'];
  const name = (): string => `${pick(words).replace(/[^a-z]/g, '') || 'v'}_${Math.floor(random() * 1000)}`;
  return Array.from({ length: count }, (_, i) => {
    const fn = `f${i}_${name()}`;
    const args = Array.from({ length: 1 + Math.floor(random() * 3) }, name);
    const doc = Array.from({ length: 3 + Math.floor(random() * 12) }, () => pick(words)).join(' ');
    const body = Array.from({ length: 2 + Math.floor(random() * 10) }, () => {
      const target = name();
      return `    ${target} = ${pick(args)} ${pick(ops)} ${Math.floor(random() * 100_000)}\n    if ${target} > ${Math.floor(random() * 50)}:\n        return ${target}\n`;
    }).join('');
    return {
      instruction: `Write ${fn}: ${doc}`,
      input: i % 4 === 0 ? '' : `${pick(args)} = ${Math.floor(random() * 1000)}`,
      output: `def ${fn}(${args.join(', ')}):\n    """${doc}."""\n${body}    return ${pick(args)}\n`,
    };
  });
}
