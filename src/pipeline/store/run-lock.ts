import { readFileSync } from 'node:fs';
import { link, mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { RunStoreError } from '../../util/errors.js';
import { log } from '../../util/log.js';

export const LOCK_FILE = 'run.lock';

/** Who holds a run directory: written into run.lock by the one process allowed to write there. */
export interface LockHolder {
  pid: number;
  host: string;
  /** The holder's start time in clock ticks since boot (/proc/<pid>/stat), so a reused pid is not taken for it. */
  process_start: string | null;
  acquired_at: string;
}

/**
 * One writer per run directory: `acquireRunLock` creates run.lock exclusively and returns a release function.
 * A second process gets one clear error naming the holder's pid and host. A lock left by a process of this host
 * that is gone (killed, crashed) is stale and taken over: it is renamed away (only one taker's rename can win),
 * checked to be the stale one, and replaced. `status` and `report` never take the lock, so they read while a run
 * goes on.
 */
export async function acquireRunLock(directory: string): Promise<() => Promise<void>> {
  await mkdir(directory, { recursive: true });
  const path = join(directory, LOCK_FILE);
  const me: LockHolder = { pid: process.pid, host: hostname(), process_start: processStart(process.pid), acquired_at: new Date().toISOString() };
  for (let attempt = 0; attempt < 3; attempt += 1) {
    if (await createExclusive(path, me)) return () => release(path, me);
    const holder = await readHolder(path);
    if (holder === undefined) continue; // released between our create and our read: try again
    if (!isStale(holder)) {
      throw new RunStoreError(`${directory} is in use by evalpipe process ${holder.pid} on ${holder.host} (since ${holder.acquired_at})`, {
        hint:
          holder.host === me.host
            ? 'wait for that run to finish, or stop it; `evalpipe status` reads the directory meanwhile'
            : `that host holds the lock; if no evalpipe runs there any more, delete ${path}`,
      });
    }
    if (await takeOverStale(path, holder)) {
      log.warn(`${directory}: took over the lock of evalpipe process ${holder.pid}, which is gone`);
    }
  }
  throw new RunStoreError(`cannot take the lock of ${directory}: other processes keep taking it`, { hint: 'run one evalpipe per run directory' });
}

async function createExclusive(path: string, holder: LockHolder): Promise<boolean> {
  try {
    const handle = await open(path, 'wx');
    try {
      await handle.writeFile(`${JSON.stringify(holder)}\n`);
      await handle.datasync();
    } finally {
      await handle.close();
    }
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new RunStoreError(`cannot create ${path}: ${(error as Error).message}`, {
      cause: error,
      hint: 'check that the run directory is writable',
    });
  }
}

async function readHolder(path: string): Promise<LockHolder | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  try {
    const holder = JSON.parse(text) as LockHolder;
    if (typeof holder.pid === 'number' && typeof holder.host === 'string') return holder;
  } catch {
    // a lock torn by a crash between create and write: its writer is gone
  }
  return { pid: -1, host: hostname(), process_start: null, acquired_at: 'unknown' };
}

/** A lock of this host whose process is gone (or is another process under a reused pid). */
function isStale(holder: LockHolder): boolean {
  if (holder.host !== hostname()) return false;
  if (holder.pid <= 0) return true;
  try {
    process.kill(holder.pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
  const start = processStart(holder.pid);
  return holder.process_start !== null && start !== null && start !== holder.process_start;
}

async function takeOverStale(path: string, stale: LockHolder): Promise<boolean> {
  const aside = `${path}.stale-${process.pid}-${Date.now()}`;
  try {
    await rename(path, aside);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false; // another taker won
    throw error;
  }
  const moved = await readHolder(aside);
  if (moved && (moved.pid !== stale.pid || moved.acquired_at !== stale.acquired_at)) {
    // we moved a live lock that a faster taker had just written: put it back (fails if yet another lock exists)
    await link(aside, path).catch(() => undefined);
  }
  await unlink(aside).catch(() => undefined);
  return true;
}

async function release(path: string, me: LockHolder): Promise<void> {
  const holder = await readHolder(path).catch(() => undefined);
  if (holder && holder.pid === me.pid && holder.acquired_at === me.acquired_at) await unlink(path).catch(() => undefined);
}

/** Field 22 of /proc/<pid>/stat (start time in clock ticks since boot); null where there is no /proc. */
function processStart(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}
