import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A small HTTP server on 127.0.0.1 that answers the Hugging Face hub routes the data-set code uses
 * (revision info, tree listing, resolve with Range probes), so the real @huggingface/hub client can be
 * exercised end to end without the internet: tests, and offline demos of `evalpipe datasets pull`.
 */
export interface LocalHubDataset {
  repo: string;
  /** Branch or ref name -> commit sha (40 hex). */
  refs: Record<string, string>;
  /** Commit sha -> repo path -> file bytes. */
  commits: Record<string, Record<string, Uint8Array>>;
}

export interface LocalHub {
  url: string;
  /** Every request as "METHOD path", in arrival order. */
  requests: string[];
  /** Authorization headers seen, in order. */
  authorizations: (string | undefined)[];
  /**
   * Stop answering requests whose path ends with `suffix`: API routes get no answer at all; a file download
   * (not a Range probe) gets its headers and half its bytes, then silence. For timeout and abort tests.
   */
  stall(suffix: string): void;
  /** Replace a file's served bytes without changing what the listing claims (to test integrity checks). */
  corrupt(repo: string, sha: string, path: string, bytes: Uint8Array): void;
  close(): Promise<void>;
}

export async function startLocalHub(datasets: LocalHubDataset[], options: { token?: string } = {}): Promise<LocalHub> {
  const byRepo = new Map(datasets.map((dataset) => [dataset.repo, dataset]));
  const served = new Map<string, Uint8Array>();
  const requests: string[] = [];
  const authorizations: (string | undefined)[] = [];
  const stalled: string[] = [];

  const handler = (request: IncomingMessage, response: ServerResponse): void => {
    const url = new URL(request.url ?? '/', 'http://127.0.0.1');
    requests.push(`${request.method ?? 'GET'} ${url.pathname}`);
    authorizations.push(request.headers.authorization);
    if (options.token !== undefined && request.headers.authorization !== `Bearer ${options.token}`) {
      return sendJson(response, 401, { error: 'Invalid credentials in Authorization header' });
    }
    const segments = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    const stalls = stalled.some((suffix) => url.pathname.endsWith(suffix));
    if (stalls && segments[0] === 'api') return;
    // /api/datasets/<owner>/<name>/revision/<rev>
    if (segments[0] === 'api' && segments[1] === 'datasets' && segments[4] === 'revision' && segments.length === 6) {
      const dataset = byRepo.get(`${segments[2]}/${segments[3]}`);
      if (!dataset) return sendJson(response, 404, { error: 'Repository not found' }, { 'X-Error-Code': 'RepoNotFound' });
      const sha = resolveRef(dataset, segments[5] as string);
      if (!sha) return sendJson(response, 404, { error: 'Invalid rev id' }, { 'X-Error-Code': 'RevisionNotFound' });
      return sendJson(response, 200, {
        _id: `id-${dataset.repo}`,
        id: dataset.repo,
        sha,
        private: false,
        gated: false,
        downloads: 0,
        likes: 0,
        lastModified: '2026-01-01T00:00:00.000Z',
      });
    }
    // /api/datasets/<owner>/<name>/tree/<rev>[/<path...>]
    if (segments[0] === 'api' && segments[1] === 'datasets' && segments[4] === 'tree' && segments.length >= 6) {
      const dataset = byRepo.get(`${segments[2]}/${segments[3]}`);
      if (!dataset) return sendJson(response, 404, { error: 'Repository not found' }, { 'X-Error-Code': 'RepoNotFound' });
      const sha = resolveRef(dataset, segments[5] as string);
      const files = sha ? dataset.commits[sha] : undefined;
      if (!sha || !files) return sendJson(response, 404, { error: 'Invalid rev id' }, { 'X-Error-Code': 'RevisionNotFound' });
      const prefix = segments.slice(6).join('/');
      const recursive = url.searchParams.get('recursive') === 'true';
      const entries = listTree(files, prefix, recursive);
      if (prefix && entries.length === 0) return sendJson(response, 404, { error: 'Entry not found' }, { 'X-Error-Code': 'EntryNotFound' });
      return sendJson(response, 200, entries);
    }
    // /datasets/<owner>/<name>/resolve/<rev>/<path...>
    if (segments[0] === 'datasets' && segments[3] === 'resolve' && segments.length >= 6) {
      const dataset = byRepo.get(`${segments[1]}/${segments[2]}`);
      const sha = dataset ? resolveRef(dataset, segments[4] as string) : undefined;
      const path = segments.slice(5).join('/');
      const original = sha && dataset ? dataset.commits[sha]?.[path] : undefined;
      if (!dataset || !sha || !original) return sendJson(response, 404, { error: 'Entry not found' }, { 'X-Error-Code': 'EntryNotFound' });
      const bytes = served.get(`${dataset.repo}@${sha}/${path}`) ?? original;
      const etag = `"${sha256(original)}"`;
      const range = /^bytes=(\d+)-(\d*)$/.exec(request.headers.range ?? '');
      if (range) {
        const start = Number(range[1]);
        const end = range[2] ? Math.min(Number(range[2]), bytes.length - 1) : bytes.length - 1;
        response.writeHead(206, {
          'Content-Type': 'application/octet-stream',
          'Content-Range': `bytes ${start}-${end}/${bytes.length}`,
          'Content-Length': String(end - start + 1),
          ETag: etag,
          'X-Repo-Commit': sha,
        });
        response.end(Buffer.from(bytes.subarray(start, end + 1)));
        return;
      }
      response.writeHead(200, {
        'Content-Type': 'application/octet-stream',
        'Content-Length': String(bytes.length),
        ETag: etag,
        'X-Repo-Commit': sha,
      });
      if (stalls) {
        response.write(Buffer.from(bytes.subarray(0, Math.floor(bytes.length / 2))));
        return;
      }
      response.end(Buffer.from(bytes));
      return;
    }
    sendJson(response, 404, { error: `no route for ${url.pathname}` });
  };

  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    authorizations,
    stall(suffix) {
      stalled.push(suffix);
    },
    corrupt(repo, sha, path, bytes) {
      served.set(`${repo}@${sha}/${path}`, bytes);
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}

function resolveRef(dataset: LocalHubDataset, revision: string): string | undefined {
  if (dataset.commits[revision]) return revision;
  return dataset.refs[revision];
}

function listTree(files: Record<string, Uint8Array>, prefix: string, recursive: boolean): unknown[] {
  const base = prefix ? `${prefix}/` : '';
  const directories = new Set<string>();
  const entries: unknown[] = [];
  for (const [path, bytes] of Object.entries(files).sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (!path.startsWith(base)) continue;
    const rest = path.slice(base.length);
    const slash = rest.indexOf('/');
    if (slash !== -1 && !recursive) {
      directories.add(base + rest.slice(0, slash));
      continue;
    }
    const digest = sha256(bytes);
    entries.push({
      type: 'file',
      path,
      size: bytes.length,
      oid: digest.slice(0, 40),
      lfs: { oid: digest, size: bytes.length, pointerSize: 130 },
    });
  }
  for (const directory of directories) entries.push({ type: 'directory', path: directory, size: 0, oid: '0'.repeat(40) });
  return entries;
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function sendJson(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(text)), ...headers });
  response.end(text);
}
