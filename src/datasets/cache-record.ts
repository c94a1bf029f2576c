import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeJsonAtomic } from '../util/atomic-file.js';

export const CACHE_SCHEMA_VERSION = 1;

/** One file of a split as the hub lists it (before download). */
export interface ListedFile {
  path: string;
  bytes: number;
  /** sha256 the hub states for LFS/xet files (the LFS oid), checked after download when present. */
  lfsSha256?: string;
}

/** One downloaded file: what the run manifest cites. */
export interface CachedFile {
  path: string;
  sha256: string;
  bytes: number;
  downloaded_at: string;
}

/**
 * <cache>/hub/<owner>--<name>/snapshots/<sha>/record.json — what is cached for one resolved commit.
 * Files are immutable per commit sha, so a record only grows.
 */
export interface CacheRecord {
  schema_version: typeof CACHE_SCHEMA_VERSION;
  repo: string;
  /** The resolved commit sha. */
  revision: string;
  /** Branch/tag names that resolved to this sha, for people reading the cache. */
  requested_revisions: string[];
  /** `<config>/<split>` -> the data files the hub listed for it, in read order. */
  splits: Record<string, { files: ListedFile[]; listed_at: string }>;
  files: CachedFile[];
  /** When the first file of this record was downloaded (or the record created). */
  downloaded_at: string;
}

/** <cache>/hub/<owner>--<name>/refs/<revision, URL-encoded>.json — the last sha a name resolved to. */
export interface RefRecord {
  schema_version: typeof CACHE_SCHEMA_VERSION;
  repo: string;
  revision: string;
  sha: string;
  resolved_at: string;
}

export interface RepoCachePaths {
  repoDir: string;
  refFile(revision: string): string;
  snapshotDir(sha: string): string;
  recordFile(sha: string): string;
  dataFile(sha: string, path: string): string;
}

export function repoCachePaths(cacheDir: string, repo: string): RepoCachePaths {
  const repoDir = join(cacheDir, 'hub', repo.replace('/', '--'));
  return {
    repoDir,
    refFile: (revision) => join(repoDir, 'refs', `${encodeURIComponent(revision)}.json`),
    snapshotDir: (sha) => join(repoDir, 'snapshots', sha),
    recordFile: (sha) => join(repoDir, 'snapshots', sha, 'record.json'),
    dataFile: (sha, path) => join(repoDir, 'snapshots', sha, 'files', ...path.split('/')),
  };
}

async function readJson(path: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(path, 'utf8'));
  } catch {
    return undefined;
  }
}

/** A missing, unreadable or other-schema record reads as undefined: the cache is rebuilt, never trusted blindly. */
export async function readCacheRecord(paths: RepoCachePaths, sha: string): Promise<CacheRecord | undefined> {
  const value = (await readJson(paths.recordFile(sha))) as CacheRecord | undefined;
  if (!value || value.schema_version !== CACHE_SCHEMA_VERSION || value.revision !== sha || !Array.isArray(value.files)) return undefined;
  return value;
}

export async function writeCacheRecord(paths: RepoCachePaths, record: CacheRecord): Promise<void> {
  await writeJsonAtomic(paths.recordFile(record.revision), record);
}

export async function readRef(paths: RepoCachePaths, revision: string): Promise<RefRecord | undefined> {
  const value = (await readJson(paths.refFile(revision))) as RefRecord | undefined;
  if (!value || value.schema_version !== CACHE_SCHEMA_VERSION || typeof value.sha !== 'string') return undefined;
  return value;
}

export async function writeRef(paths: RepoCachePaths, ref: RefRecord): Promise<void> {
  await writeJsonAtomic(paths.refFile(ref.revision), ref);
}
