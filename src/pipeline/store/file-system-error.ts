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
  const path = (error as NodeJS.ErrnoException).path ?? directory;
  return new RunStoreError(`cannot use ${directory} as the run directory: ${code} on ${path}`, { cause: error, hint: HINTS[code] });
}
