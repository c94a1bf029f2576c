import { execFileSync } from 'node:child_process';
import { closeSync, openSync, writeSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  PERPLEXITY_ONLY,
  checkRecordFile,
  comparableResults,
  completeLines,
  faultCommand,
  startCli,
  waitUntil,
  withoutTiming,
  perplexityReference,
  type FaultCommandConfig,
} from './harness.js';

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/** Fill a file system until it refuses: the next write anyone makes there fails with ENOSPC. */
function fillDisk(path: string): number {
  const fd = openSync(path, 'w');
  const chunk = Buffer.alloc(4096, 120);
  let written = 0;
  try {
    for (;;) written += writeSync(fd, chunk);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
  } finally {
    closeSync(fd);
  }
  return written;
}

describe.skipIf(!isRoot)(
  'a write that fails (disk full on a 512 KiB tmpfs: the records, results.json with its per-row NLL and the reports must fit once the filler is gone)',
  () => {
    let root: string;
    let mountPoint: string;
    let mounted = false;
    let config: FaultCommandConfig;
    let reference: string;

    beforeAll(async () => {
      root = await mkdtemp(join(tmpdir(), 'evalpipe-fault-disk-'));
      mountPoint = join(root, 'tiny');
      execFileSync('mkdir', ['-p', mountPoint]);
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=512k', 'tmpfs', mountPoint]);
      mounted = true;
      // 240 rows of records (~30 KB) span several 4 KiB pages, so filling the disk mid-stage makes a later append fail.
      ({ config, reference } = await perplexityReference(root));
    }, 900_000); // an upper bound for a saturated 2-core machine, not an expected duration
    afterAll(async () => {
      if (mounted) execFileSync('umount', [mountPoint]);
      if (root) await rm(root, { recursive: true, force: true });
    });

    it('surfaces the failure in one clear line, leaves only whole records, and the same command resumes once there is space', async () => {
      const runDir = join(mountPoint, 'run');
      const file = join(runDir, 'records', 'perplexity.jsonl');
      const run = startCli(faultCommand(runDir, config, PERPLEXITY_ONLY));
      await waitUntil(() => completeLines(file) >= 10, { timeoutMs: 600_000, done: run.exited });
      const filler = join(mountPoint, 'filler');
      fillDisk(filler);
      const failed = await run.exited;
      expect(failed.code, failed.stderr).toBe(1);
      const errorLine = failed.stderr.split('\n').find((line) => line.startsWith('evalpipe: '));
      expect(errorLine).toMatch(
        new RegExp(`^evalpipe: cannot write a record to ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: ENOSPC: no space left on device`),
      );
      expect(errorLine).toContain('free disk space (or fix permissions), then run the same command again to resume');

      // Nothing corrupt: whole records only (the failed append was cut back), a valid manifest, no temp files.
      const partial = await checkRecordFile(file);
      expect(partial.tornBytes).toBe(0);
      expect(partial.corruptLines).toEqual([]);
      expect(partial.duplicates).toEqual([]);
      expect(partial.completeLines).toBeGreaterThanOrEqual(10);
      expect(partial.completeLines).toBeLessThan(config.rows);
      const manifest = JSON.parse(await readFile(join(runDir, 'manifest.json'), 'utf8')) as { schema_version: number };
      expect(manifest.schema_version).toBe(1);
      expect((await readdir(runDir)).filter((name) => name.endsWith('.incomplete'))).toEqual([]);

      await rm(filler);
      const resumed = await startCli(faultCommand(runDir, config, PERPLEXITY_ONLY)).exited;
      expect(resumed.code, resumed.stderr).toBe(0);
      const got = await checkRecordFile(file);
      const want = await checkRecordFile(join(reference, 'records', 'perplexity.jsonl'));
      expect(got.completeLines).toBe(config.rows);
      expect(got.duplicates).toEqual([]);
      for (const [key, record] of want.records) expect(withoutTiming(got.records.get(key)!), key).toEqual(withoutTiming(record));
      const results = (dir: string) => readFile(join(dir, 'results.json'), 'utf8').then((text) => comparableResults(JSON.parse(text)));
      expect(await results(runDir)).toEqual(await results(reference));
    }, 900_000); // an upper bound for a saturated 2-core machine, not an expected duration
  },
);
