import { createHash } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { downloadFile } from '@huggingface/hub';
import { DataError } from '../util/errors.js';
import type { ListedFile } from './cache-record.js';
import { HubStreamError } from './hub-errors.js';

export interface DownloadParams {
  repo: string;
  sha: string;
  file: ListedFile;
  destination: string;
  hubUrl?: string;
  accessToken?: string;
  signal?: AbortSignal;
  /** Abort when no bytes arrive for this long (default 60 s). */
  stallTimeoutMs: number;
}

/**
 * Download one file at a pinned commit into `<destination>.<pid>.incomplete`, hashing as it streams, check
 * size and (when the hub states one) sha256, then rename it into place. A reader never sees a partial file.
 */
export async function downloadToCache(params: DownloadParams): Promise<{ sha256: string; bytes: number }> {
  const stall = new AbortController();
  const signals = params.signal ? [params.signal, stall.signal] : [stall.signal];
  const signal = AbortSignal.any(signals);
  let timer: NodeJS.Timeout | undefined;
  const arm = (): void => {
    clearTimeout(timer);
    timer = setTimeout(
      () =>
        stall.abort(
          new DataError(`download of ${params.file.path} stalled: no data for ${params.stallTimeoutMs / 1000} s`, {
            hint: 'check the network and run the command again; nothing partial was kept',
          }),
        ),
      params.stallTimeoutMs,
    );
  };
  const boundFetch: typeof fetch = (input, init) => {
    arm();
    return fetch(input, { ...init, signal: init?.signal ? AbortSignal.any([signal, init.signal]) : signal });
  };

  await mkdir(dirname(params.destination), { recursive: true });
  const temporary = `${params.destination}.${process.pid}.${Date.now()}.incomplete`;
  const hash = createHash('sha256');
  let bytes = 0;
  try {
    arm();
    const blob = await downloadFile({
      repo: { type: 'dataset', name: params.repo },
      path: params.file.path,
      revision: params.sha,
      hubUrl: params.hubUrl,
      accessToken: params.accessToken,
      fetch: boundFetch,
    });
    if (!blob) {
      throw new DataError(`${params.repo} has no file ${params.file.path} at ${params.sha}`, {
        hint: 'the hub listed it but will not serve it; run the command again, or give a local file',
      });
    }
    const handle = await open(temporary, 'w');
    try {
      const reader = blob.stream().getReader();
      for (;;) {
        if (signal.aborted) throw signal.reason;
        const { done, value } = await reader.read();
        if (done) break;
        arm();
        hash.update(value);
        bytes += value.byteLength;
        await handle.write(value);
      }
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch (error) {
    clearTimeout(timer);
    await rm(temporary, { force: true });
    if (stall.signal.aborted && stall.signal.reason instanceof DataError) throw stall.signal.reason;
    if (params.signal?.aborted) throw params.signal.reason;
    // The hub client's Blob.stream() reports failures as a bare message string.
    if (typeof error === 'string') throw new HubStreamError(error);
    throw error;
  }
  clearTimeout(timer);
  const sha256 = hash.digest('hex');
  const problem =
    bytes !== params.file.bytes
      ? `is ${bytes} bytes, the hub listed ${params.file.bytes}`
      : params.file.lfsSha256 && params.file.lfsSha256 !== sha256
        ? `has sha256 ${sha256}, the hub listed ${params.file.lfsSha256}`
        : undefined;
  if (problem) {
    await rm(temporary, { force: true });
    throw new DataError(`downloaded ${params.repo}/${params.file.path} ${problem}`, {
      hint: 'the transfer was corrupted or the hub changed under us; run the command again',
    });
  }
  await rename(temporary, params.destination);
  return { sha256, bytes };
}
