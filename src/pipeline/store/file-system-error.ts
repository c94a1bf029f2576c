import { isAbsolute, relative, resolve } from 'node:path';
import { RunStoreError } from '../../util/errors.js';

/** What to do about a file-system error on a run directory, by errno code. */
const HINTS: Record<string, string> = {
  ENOTDIR: 'a file is in the way of that path: choose another --run-dir, or move the file',
  EEXIST: 'a file is in the way of that path: choose another --run-dir, or move the file',
  EACCES: 'it is not writable by this user: fix its permissions or choose another --run-dir',
  EPERM: 'it is not writable by this user: fix its permissions or choose another --run-dir',
  EROFS: 'it is on a read-only file system: choose another --run-dir',
  ENOSPC: 'the disk is full: free space and run the same command again',
  ENAMETOOLONG: 'the path is too long: choose a shorter --run-dir',
};

/**
 * A file-system error on the run directory as one clear line naming the path and what to do (it was
 * "internal error: ENOTDIR" for a --run-dir that is a file); anything else passes through unchanged.
 */
export function runDirectoryError(directory: string, error: unknown): unknown {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (error instanceof RunStoreError || typeof code !== 'string' || !(code in HINTS)) return error;
  const failed = (error as NodeJS.ErrnoException).path;
  // Only errors on the run directory's own path (or a file in the way above it); a data set's or cache's path
  // keeps its own error. A write on an open handle names no path: it is one of the run directory's files.
  if (failed !== undefined && !isWithin(failed, directory) && !isWithin(directory, failed)) return error;
  const path = failed ?? directory;
  return new RunStoreError(`cannot use ${directory} as the run directory: ${code} on ${path}`, { cause: error, hint: HINTS[code] });
}

function isWithin(path: string, directory: string): boolean {
  const relation = relative(resolve(directory), resolve(path));
  return relation === '' || (!relation.startsWith('..') && !isAbsolute(relation));
}
