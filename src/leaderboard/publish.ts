import { readFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { commit, createRepo, HubApiError, type CommitOperation } from '@huggingface/hub';
import { MANIFEST_FILE } from '../pipeline/store/run-directory.js';
import { RESULTS_FILE } from '../pipeline/store/results.js';
import { readRunData } from '../pipeline/store/run-reader.js';
import { REPORT_HTML, REPORT_MARKDOWN } from '../pipeline/report/write-reports.js';
import { EvalpipeError, UsageError } from '../util/errors.js';
import { readLeaderboardFile } from './leaderboard-file.js';

export const DEFAULT_HUB_URL = 'https://huggingface.co';

/** Publishing to the hub failed: the message names the repo and the hub's answer. */
export class PublishError extends EvalpipeError {
  readonly status: number | undefined;
  constructor(message: string, options: { hint?: string; cause?: unknown; status?: number } = {}) {
    super('publish', message, options);
    this.status = options.status;
  }
}

export interface PublishParams {
  /** Dataset repo, `owner/name`. */
  repo: string;
  accessToken: string;
  hubUrl?: string;
  /** A leaderboard file to upload as leaderboard.json (validated first). */
  leaderboard?: string;
  /** Run directories whose manifest, results and reports go under runs/<run-id>/. */
  runDirs: string[];
  /** Create the dataset repo first (an existing one is fine). */
  create?: boolean;
  branch?: string;
  title?: string;
  signal?: AbortSignal;
  fetch?: typeof fetch;
}

export interface PublishedFile {
  pathInRepo: string;
  localPath: string;
  bytes: number;
}

export interface PublishResult {
  repo: string;
  hubUrl: string;
  commit: { oid: string; url: string };
  files: PublishedFile[];
}

/** The files `publish` would upload: leaderboard.json, then each run's manifest/results/reports. */
export async function collectPublishFiles(
  params: Pick<PublishParams, 'leaderboard' | 'runDirs'>,
): Promise<{ pathInRepo: string; localPath: string; content: Buffer }[]> {
  const files: { pathInRepo: string; localPath: string; content: Buffer }[] = [];
  if (params.leaderboard) {
    const path = resolve(params.leaderboard);
    await readLeaderboardFile(path); // refuses a file that fails the schema, naming the entry and field
    files.push({ pathInRepo: 'leaderboard.json', localPath: path, content: await readFile(path) });
  }
  for (const dir of params.runDirs) {
    const run = await readRunData(dir);
    if (!run.results) {
      throw new UsageError(`${run.dir} has no ${RESULTS_FILE}: the run is not scored yet`, {
        hint: 'finish the run first (the same `evalpipe run` command resumes it), or leave this directory out',
      });
    }
    const runId = run.manifest.run_id.replace(/[^A-Za-z0-9._-]+/g, '_');
    for (const name of [MANIFEST_FILE, RESULTS_FILE, REPORT_MARKDOWN, REPORT_HTML]) {
      const localPath = join(run.dir, name);
      let content: Buffer;
      try {
        content = await readFile(localPath);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT' && (name === REPORT_MARKDOWN || name === REPORT_HTML)) continue;
        throw error;
      }
      files.push({ pathInRepo: `runs/${runId}/${basename(name)}`, localPath, content });
    }
  }
  if (files.length === 0) throw new UsageError('nothing to publish', { hint: 'pass --leaderboard <file> and/or run directories' });
  const seen = new Set<string>();
  for (const file of files) {
    if (seen.has(file.pathInRepo)) {
      throw new UsageError(`two inputs would both upload ${file.pathInRepo}`, { hint: 'pass each run directory once' });
    }
    seen.add(file.pathInRepo);
  }
  return files;
}

/** Upload a leaderboard and run results to a hub dataset repo in one commit. */
export async function publish(params: PublishParams): Promise<PublishResult> {
  const hubUrl = (params.hubUrl ?? DEFAULT_HUB_URL).replace(/\/+$/, '');
  if (!/^[A-Za-z0-9][\w.-]*\/[\w.-]+$/.test(params.repo)) {
    throw new UsageError(`--repo must be owner/name, got "${params.repo}"`, { hint: 'e.g. --repo my-org/evalpipe-results' });
  }
  if (!params.accessToken.startsWith('hf_')) {
    throw new UsageError('HF_TOKEN does not look like a hub access token (it must start with hf_)', {
      hint: `create a token with write access at ${hubUrl}/settings/tokens and export HF_TOKEN=hf_...`,
    });
  }
  checkTokenTransport(hubUrl);
  const files = await collectPublishFiles(params);
  const repo = { type: 'dataset' as const, name: params.repo };
  const where = `dataset ${params.repo} on ${hubUrl}`;
  try {
    if (params.create) {
      try {
        await createRepo({ repo, accessToken: params.accessToken, hubUrl, ...(params.fetch ? { fetch: params.fetch } : {}) });
      } catch (error) {
        if (!(error instanceof HubApiError && error.statusCode === 409)) throw error; // 409: it exists already
      }
    }
    const operations: CommitOperation[] = files.map((file) => ({
      operation: 'addOrUpdate',
      path: file.pathInRepo,
      content: new Blob([new Uint8Array(file.content)]),
    }));
    const output = await commit({
      repo,
      accessToken: params.accessToken,
      hubUrl,
      title: params.title ?? `evalpipe: publish ${files.length} file${files.length === 1 ? '' : 's'}`,
      operations,
      ...(params.branch ? { branch: params.branch } : {}),
      ...(params.signal ? { abortSignal: params.signal } : {}),
      ...(params.fetch ? { fetch: params.fetch } : {}),
      useXet: false,
    });
    if (!output?.commit.oid) throw new PublishError(`the hub accepted the upload to ${where} but returned no commit id`, { hint: 'check the repo on the hub' });
    return {
      repo: params.repo,
      hubUrl,
      commit: output.commit,
      files: files.map((file) => ({ pathInRepo: file.pathInRepo, localPath: file.localPath, bytes: file.content.length })),
    };
  } catch (error) {
    throw toPublishError(error, where, hubUrl);
  }
}

/**
 * The token travels in an Authorization header: only over HTTPS, or plain HTTP to this machine (a local test hub).
 * Anything else would hand it to whoever sits on the path.
 */
export function checkTokenTransport(hubUrl: string): void {
  let url: URL;
  try {
    url = new URL(hubUrl);
  } catch {
    throw new UsageError(`--hub-url is not a URL: "${hubUrl}"`, { hint: `e.g. --hub-url ${DEFAULT_HUB_URL}` });
  }
  if (url.protocol === 'https:') return;
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const loopback = host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
  if (url.protocol === 'http:' && loopback) return;
  throw new UsageError(`refusing to send HF_TOKEN to ${url.protocol}//${url.host}: the token would travel in clear text`, {
    hint: 'use an https:// hub URL (plain http is allowed only for a hub on this machine: localhost, 127.x.x.x, [::1])',
  });
}

function toPublishError(error: unknown, where: string, hubUrl: string): unknown {
  if (error instanceof EvalpipeError) return error;
  if (error instanceof HubApiError) {
    const detail = firstLine(error.message);
    const tokens = `${hubUrl}/settings/tokens`;
    switch (error.statusCode) {
      case 401:
        return new PublishError(`the hub rejected HF_TOKEN for ${where} (HTTP 401: ${detail})`, {
          status: 401,
          cause: error,
          hint: `create a valid token at ${tokens} and export HF_TOKEN`,
        });
      case 403:
        return new PublishError(`HF_TOKEN has no write access to ${where} (HTTP 403: ${detail})`, {
          status: 403,
          cause: error,
          hint: `use a token with write permission for that repo (${tokens}), or publish to a repo you own`,
        });
      case 404:
        return new PublishError(`${where} was not found (HTTP 404)`, {
          status: 404,
          cause: error,
          hint: 'create the dataset repo first, or pass --create',
        });
      default:
        return new PublishError(`uploading to ${where} failed (HTTP ${error.statusCode}: ${detail})`, {
          status: error.statusCode,
          cause: error,
          hint: 'try again; if it persists, check the hub status and the repo settings',
        });
    }
  }
  if (error instanceof TypeError && /fetch failed|ECONNREFUSED|ENOTFOUND/i.test(`${error.message} ${String((error as { cause?: unknown }).cause)}`)) {
    return new PublishError(`cannot reach ${hubUrl} to publish to ${where}: ${error.message}`, {
      cause: error,
      hint: 'check the network and --hub-url',
    });
  }
  return error;
}

function firstLine(text: string): string {
  return text.split('\n')[0]!.slice(0, 300);
}
