import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { UsageError } from '../util/errors.js';
import { SMOKE_SOURCE_ID } from './smoke-texts.js';

/** The file formats accepted wherever a hub id is. */
export const LOCAL_EXTENSIONS = ['.jsonl', '.jsonl.gz', '.parquet', '.arrow'] as const;
export type LocalFormat = 'jsonl' | 'jsonl.gz' | 'parquet' | 'arrow';

export type ResolvedSource = { kind: 'builtin'; id: string } | { kind: 'local'; path: string; format: LocalFormat } | { kind: 'hub'; repo: string };

const HUB_ID = /^[A-Za-z0-9][A-Za-z0-9._-]*\/[A-Za-z0-9][A-Za-z0-9._-]*$/;

export function localFormatOf(path: string): LocalFormat | undefined {
  const lower = path.toLowerCase();
  if (lower.endsWith('.jsonl.gz')) return 'jsonl.gz';
  if (lower.endsWith('.jsonl')) return 'jsonl';
  if (lower.endsWith('.parquet')) return 'parquet';
  if (lower.endsWith('.arrow')) return 'arrow';
  return undefined;
}

/**
 * Decide what a source string names. A path that exists, or that looks like a path
 * (starts with `.` or `/`, or ends in a known extension), is local; `owner/name` is a hub id.
 */
export function resolveSource(source: string): ResolvedSource {
  const trimmed = source.trim();
  if (trimmed === '') {
    throw new UsageError('the data set source is empty', {
      hint: 'name a hub id (flytech/python-codes-25k), a local .jsonl/.jsonl.gz/.parquet/.arrow file, or builtin:smoke',
    });
  }
  if (trimmed.startsWith('builtin:')) {
    if (trimmed !== SMOKE_SOURCE_ID) {
      throw new UsageError(`unknown built-in data set ${trimmed}`, { hint: `the only built-in set is ${SMOKE_SOURCE_ID}` });
    }
    return { kind: 'builtin', id: trimmed };
  }
  const format = localFormatOf(trimmed);
  const looksLikePath = /^(\.|\/|[A-Za-z]:\\)/.test(trimmed) || format !== undefined;
  if (looksLikePath || isFile(trimmed)) {
    const path = resolve(trimmed);
    if (!existsSync(path)) {
      throw new UsageError(`data set file ${path} does not exist`, {
        hint: 'check the path, or give a hub id such as flytech/python-codes-25k',
      });
    }
    if (format === undefined) {
      throw new UsageError(`cannot read ${path}: unknown file type`, {
        hint: `convert it to one of ${LOCAL_EXTENSIONS.join(', ')}`,
      });
    }
    return { kind: 'local', path, format };
  }
  if (HUB_ID.test(trimmed)) return { kind: 'hub', repo: trimmed };
  throw new UsageError(`"${trimmed}" is neither a hub data set id (owner/name) nor an existing file`, {
    hint: `give owner/name (e.g. flytech/python-codes-25k) or a path to a ${LOCAL_EXTENSIONS.join(', ')} file`,
  });
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}
