import { existsSync } from 'node:fs';
import { datasetInfo, HubApiError, listFiles } from '@huggingface/hub';
import type { Table } from 'apache-arrow';
import { DataError, UsageError } from '../util/errors.js';
import { log } from '../util/log.js';
import { rowsToTable } from './arrow-table.js';
import {
  CACHE_SCHEMA_VERSION,
  readCacheRecord,
  readRef,
  repoCachePaths,
  writeCacheRecord,
  writeRef,
  type CacheRecord,
  type ListedFile,
} from './cache-record.js';
import { hashFile } from './file-hash.js';
import { downloadToCache } from './hub-download.js';
import { explainHubError, isNetworkFailure } from './hub-errors.js';
import { defaultCacheDir } from './paths.js';
import { readLocalRows } from './read-local.js';
import { localFormatOf } from './source.js';

export interface HubPullParams {
  repo: string;
  /** Branch, tag or commit sha, e.g. `refs/convert/parquet` or `main`. */
  revision: string;
  config: string;
  split: string;
  /** Read at most this many rows; files after the one that completes them are not downloaded. */
  rows: number;
  signal?: AbortSignal;
  hubUrl?: string;
  accessToken?: string;
  offline: boolean;
  cacheDir?: string;
  /** Per API request (default 30 s). */
  requestTimeoutMs?: number;
  /** Abort a download when no bytes arrive for this long (default 60 s). */
  stallTimeoutMs?: number;
}

export interface HubPullResult {
  rows: Record<string, unknown>[];
  columns: string[];
  table: Table;
  /** The resolved commit sha. */
  revision: string;
  /** The files the rows came from (paths relative to the repo). */
  files: { path: string; sha256: string; bytes: number }[];
  /** Files fetched by this call (the rest came from the cache). */
  downloaded: string[];
  recordFile: string;
  /** True when nothing had to be downloaded. */
  fromCache: boolean;
}

const SHA = /^[0-9a-f]{40}$/;
const DATA_EXTENSIONS = ['.parquet', '.jsonl', '.jsonl.gz', '.arrow'];

/**
 * Make sure the first `rows` rows of repo@revision config/split are in the cache, then read them.
 * Online: the revision is resolved to a commit sha; files already cached for that sha (checked by sha256)
 * are reused. Offline, or when the hub cannot be reached: only the cache is used, and when it lacks what is
 * needed one clear error says so and names the way out (a local file).
 */
export async function pullHubDataset(params: HubPullParams): Promise<HubPullResult> {
  if (params.accessToken !== undefined && !params.accessToken.startsWith('hf_')) {
    throw new UsageError('HF_TOKEN does not look like a Hugging Face token (it must start with "hf_")', {
      hint: 'set HF_TOKEN to a token from https://huggingface.co/settings/tokens, or unset it for public data sets',
    });
  }
  const paths = repoCachePaths(params.cacheDir ?? defaultCacheDir(), params.repo);
  const requestTimeoutMs = params.requestTimeoutMs ?? 30_000;
  const apiFetch: typeof fetch = (input, init) => {
    const signals = [AbortSignal.timeout(requestTimeoutMs)];
    if (params.signal) signals.push(params.signal);
    if (init?.signal) signals.push(init.signal);
    return fetch(input, { ...init, signal: AbortSignal.any(signals) });
  };
  const splitKey = `${params.config}/${params.split}`;
  const label = `${params.repo}@${params.revision} (${splitKey})`;
  let online = !params.offline;
  let networkError: unknown;

  const offlineError = (missing: string): DataError => {
    const why = params.offline ? 'HF_HUB_OFFLINE=1 forbids downloading' : `the hub cannot be reached (${describe(networkError)})`;
    return new DataError(`${label}: ${missing} is not in the cache ${paths.repoDir} and ${why}`, {
      hint:
        `run \`evalpipe datasets pull ${params.repo}${params.revision === 'refs/convert/parquet' ? '' : ` --revision ${params.revision}`}\` once with network, ` +
        'or pass a local .jsonl, .jsonl.gz, .parquet or .arrow file in place of the hub id (e.g. --dataset ./python-codes.parquet)',
    });
  };

  // 1. Resolve the revision to a commit sha.
  let sha: string | undefined = SHA.test(params.revision) ? params.revision : undefined;
  if (sha === undefined && online) {
    try {
      const info = await datasetInfo({
        name: params.repo,
        revision: params.revision,
        additionalFields: ['sha'],
        hubUrl: params.hubUrl,
        accessToken: params.accessToken,
        fetch: apiFetch,
      });
      if (typeof info.sha !== 'string' || !SHA.test(info.sha)) {
        throw new DataError(`the hub answered for ${params.repo}@${params.revision} without a commit sha`, {
          hint: 'check that HF_ENDPOINT (if set) points at a Hugging Face hub',
        });
      }
      sha = info.sha;
      await writeRef(paths, {
        schema_version: CACHE_SCHEMA_VERSION,
        repo: params.repo,
        revision: params.revision,
        sha,
        resolved_at: new Date().toISOString(),
      });
    } catch (error) {
      if (params.signal?.aborted) throw error;
      if (!isNetworkFailure(error))
        throw explainHubError(error, `data set ${params.repo} at revision ${params.revision}`, params.repo, params.revision) ?? error;
      networkError = error;
      online = false;
    }
  }
  if (sha === undefined) {
    sha = (await readRef(paths, params.revision))?.sha;
    if (sha === undefined) throw offlineError(`revision ${params.revision}`);
    if (networkError !== undefined) log.warn(`cannot reach the hub (${describe(networkError)}); using the cached ${params.revision} = ${sha.slice(0, 12)}`);
  }

  // 2. The split's file list (immutable for a commit sha, so cached).
  const now = new Date().toISOString();
  const record: CacheRecord = (await readCacheRecord(paths, sha)) ?? {
    schema_version: CACHE_SCHEMA_VERSION,
    repo: params.repo,
    revision: sha,
    requested_revisions: [],
    splits: {},
    files: [],
    downloaded_at: now,
  };
  let recordChanged = false;
  if (!SHA.test(params.revision) && !record.requested_revisions.includes(params.revision)) {
    record.requested_revisions.push(params.revision);
    recordChanged = true;
  }
  let listing = record.splits[splitKey]?.files;
  if (listing === undefined) {
    if (!online) throw offlineError(`the file list of ${splitKey} at ${sha.slice(0, 12)}`);
    try {
      listing = await listSplitFiles(params, sha, apiFetch);
    } catch (error) {
      if (params.signal?.aborted) throw error;
      if (isNetworkFailure(error)) {
        networkError = error;
        throw offlineError(`the file list of ${splitKey}`);
      }
      throw explainHubError(error, `file list of ${splitKey} in ${params.repo}@${sha.slice(0, 12)}`, params.repo, params.revision) ?? error;
    }
    record.splits[splitKey] = { files: listing, listed_at: now };
    recordChanged = true;
  }

  // 3. Download (or reuse) files in order until the rows are there.
  const rows: Record<string, unknown>[] = [];
  const columns: string[] = [];
  const files: HubPullResult['files'] = [];
  const downloaded: string[] = [];
  for (const file of listing) {
    if (rows.length >= params.rows) break;
    params.signal?.throwIfAborted();
    const local = paths.dataFile(sha, file.path);
    let cached = record.files.find((entry) => entry.path === file.path);
    if (cached && !(await cachedFileIntact(local, cached.sha256, params.signal))) {
      log.warn(`cached ${file.path} is missing or does not match its recorded sha256${online ? '; fetching it again' : ''}`);
      record.files = record.files.filter((entry) => entry !== cached);
      cached = undefined;
      recordChanged = true;
    }
    if (!cached) {
      if (!online) throw offlineError(file.path);
      log.info(`downloading ${params.repo}/${file.path} (${formatBytes(file.bytes)}) at ${sha.slice(0, 12)}`);
      let got: { sha256: string; bytes: number };
      try {
        got = await downloadToCache({
          repo: params.repo,
          sha,
          file,
          destination: local,
          hubUrl: params.hubUrl,
          accessToken: params.accessToken,
          signal: params.signal,
          stallTimeoutMs: params.stallTimeoutMs ?? 60_000,
        });
      } catch (error) {
        if (params.signal?.aborted) throw error;
        if (isNetworkFailure(error)) {
          networkError = error;
          throw offlineError(file.path);
        }
        throw explainHubError(error, `file ${file.path} of ${params.repo}@${sha.slice(0, 12)}`, params.repo, params.revision) ?? error;
      }
      cached = { path: file.path, sha256: got.sha256, bytes: got.bytes, downloaded_at: new Date().toISOString() };
      record.files.push(cached);
      downloaded.push(file.path);
      await writeCacheRecord(paths, record);
      recordChanged = false;
    }
    const read = await readLocalRows(local, {
      rows: params.rows - rows.length,
      signal: params.signal,
      displayPath: `${params.repo}/${file.path}`,
      knownHash: { sha256: cached.sha256, bytes: cached.bytes },
    });
    for (const column of read.columns) if (!columns.includes(column)) columns.push(column);
    rows.push(...read.rows);
    files.push({ path: file.path, sha256: cached.sha256, bytes: cached.bytes });
  }
  if (recordChanged) await writeCacheRecord(paths, record);
  return {
    rows,
    columns,
    table: rowsToTable(rows, columns),
    revision: sha,
    files,
    downloaded,
    recordFile: paths.recordFile(sha),
    fromCache: downloaded.length === 0,
  };
}

async function cachedFileIntact(path: string, sha256: string, signal?: AbortSignal): Promise<boolean> {
  if (!existsSync(path)) return false;
  return (await hashFile(path, signal)).sha256 === sha256;
}

/**
 * The data files of one split: `<config>/<split>/*` (the layout of refs/convert/parquet); failing that, the
 * repo's own data files (e.g. python-codes-25k.jsonl on main), preferring names that mention the split.
 */
async function listSplitFiles(params: HubPullParams, sha: string, apiFetch: typeof fetch): Promise<ListedFile[]> {
  const list = async (path: string | undefined, recursive: boolean): Promise<ListedFile[]> => {
    const out: ListedFile[] = [];
    for await (const entry of listFiles({
      repo: { type: 'dataset', name: params.repo },
      revision: sha,
      path,
      recursive,
      hubUrl: params.hubUrl,
      accessToken: params.accessToken,
      fetch: apiFetch,
    })) {
      if (entry.type !== 'file' || !DATA_EXTENSIONS.some((ext) => entry.path.toLowerCase().endsWith(ext))) continue;
      const listed: ListedFile = { path: entry.path, bytes: entry.lfs?.size ?? entry.size };
      if (entry.lfs?.oid) listed.lfsSha256 = entry.lfs.oid;
      out.push(listed);
    }
    return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  };
  let files: ListedFile[] = [];
  try {
    files = await list(`${params.config}/${params.split}`, false);
  } catch (error) {
    if (!(error instanceof HubApiError && error.statusCode === 404)) throw error;
  }
  if (files.length === 0) {
    const all = await list(undefined, true);
    // As the datasets library does: files that name the split belong to it; a repo whose files name no
    // split at all holds one split, "train".
    const forSplit = all.filter((file) => file.path.toLowerCase().includes(params.split.toLowerCase()));
    const namesNoSplit = all.every((file) => !/(^|[/_.-])(train|test|validation|valid|dev)([/_.-]|$)/i.test(file.path));
    files = forSplit.length > 0 ? forSplit : params.split === 'train' && namesNoSplit ? all : [];
    const formats = new Set(files.map((file) => localFormatOf(file.path)));
    if (formats.size > 1 && formats.has('parquet')) files = files.filter((file) => localFormatOf(file.path) === 'parquet');
  }
  if (files.length === 0) {
    throw new UsageError(`${params.repo}@${params.revision} has no data files for ${params.config}/${params.split}`, {
      hint: "check --split/--config, or use --revision refs/convert/parquet (the hub's parquet conversion)",
    });
  }
  return files;
}

function describe(error: unknown): string {
  if (error === undefined) return 'offline';
  let current: unknown = error;
  let text = '';
  while (current instanceof Error) {
    const code = (current as NodeJS.ErrnoException).code;
    text = code ? `${current.message} [${code}]` : current.message;
    current = current.cause;
  }
  return text || String(error);
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}
