import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { readCacheRecord, repoCachePaths, type CacheRecord } from './cache-record.js';
import { defaultCacheDir } from './paths.js';

/** Every cache record under <cache>/hub, for `evalpipe datasets list`. */
export async function listCachedDatasets(cacheDir = defaultCacheDir()): Promise<CacheRecord[]> {
  const hubDir = join(cacheDir, 'hub');
  const records: CacheRecord[] = [];
  for (const repoName of await safeReaddir(hubDir)) {
    const separator = repoName.indexOf('--');
    if (separator <= 0) continue;
    const repo = `${repoName.slice(0, separator)}/${repoName.slice(separator + 2)}`;
    const paths = repoCachePaths(cacheDir, repo);
    for (const sha of await safeReaddir(join(paths.repoDir, 'snapshots'))) {
      const record = await readCacheRecord(paths, sha);
      if (record) records.push(record);
    }
  }
  return records;
}

async function safeReaddir(path: string): Promise<string[]> {
  try {
    return (await readdir(path)).sort();
  } catch {
    return [];
  }
}
