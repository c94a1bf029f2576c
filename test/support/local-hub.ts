import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * The one fake Hugging Face hub of the tests: an HTTP server on 127.0.0.1 that the real @huggingface/hub client
 * talks to, with no internet.
 * - Read routes (GET/HEAD), for the data-set code: revision info, tree listing, resolve with Range probes, over
 *   the `datasets` it is given; `token` makes them answer 401 without `Authorization: Bearer <token>`.
 * - Write routes (POST), for `publish`: what createRepo and commit call for small files
 *   (/api/repos/create, /api/datasets/<repo>/preupload/<rev>, /api/datasets/<repo>/commit/<rev>), with token
 *   scopes (`tokens`), checking each commit it receives: the header, every file announced in preupload with the
 *   same size, base64 that decodes, no LFS pointers for files it said to upload inline.
 */
export interface LocalHubOptions {
  datasets?: LocalHubDataset[];
  /** Read routes need this bearer token (default: none needed). */
  token?: string;
  /** Write routes: token -> scope (default: none, so every write is refused with 401). */
  tokens?: Record<string, 'read' | 'write'>;
  /** Data-set repos that exist for writing. */
  repos?: string[];
}

export interface LocalHub {
  url: string;
  /** Every read request as "METHOD path", in arrival order. */
  requests: string[];
  /** Authorization headers of the read requests, in order. */
  authorizations: (string | undefined)[];
  /**
   * Stop answering requests whose path ends with `suffix`: API routes get no answer at all; a file download
   * (not a Range probe) gets its headers and half its bytes, then silence. For timeout and abort tests.
   */
  stall(suffix: string): void;
  /** Replace a file's served bytes without changing what the listing claims (to test integrity checks). */
  corrupt(repo: string, sha: string, path: string, bytes: Uint8Array): void;
  /** Commits received through the write routes, and the repos' files after them. */
  commits: ReceivedCommit[];
  repos: Map<string, Map<string, Buffer>>;
  /** Write requests that the server refused, with why (for assertions). */
  refusals: string[];
  close(): Promise<void>;
}

export async function startLocalHub(datasets: LocalHubDataset[], options?: { token?: string }): Promise<LocalHub>;
export async function startLocalHub(options: LocalHubOptions): Promise<LocalHub>;
export async function startLocalHub(first: LocalHubDataset[] | LocalHubOptions, second: { token?: string } = {}): Promise<LocalHub> {
  const options: LocalHubOptions = Array.isArray(first) ? { datasets: first, ...second } : first;
  let url = '';
  const reads = readRoutes(options.datasets ?? [], { token: options.token });
  const writes = writeRoutes({ tokens: options.tokens ?? {}, repos: options.repos ?? [] }, () => url);
  const server = createServer((request, response) => (request.method === 'POST' ? writes.handler(request, response) : reads.handler(request, response)));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    requests: reads.requests,
    authorizations: reads.authorizations,
    stall: reads.stall,
    corrupt: reads.corrupt,
    commits: writes.commits,
    repos: writes.repos,
    refusals: writes.refusals,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}

export interface LocalHubDataset {
  repo: string;
  /** Branch or ref name -> commit sha (40 hex). */
  refs: Record<string, string>;
  /** Commit sha -> repo path -> file bytes. */
  commits: Record<string, Record<string, Uint8Array>>;
}

function readRoutes(datasets: LocalHubDataset[], options: { token?: string }) {
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

  return {
    handler,
    requests,
    authorizations,
    stall(suffix: string) {
      stalled.push(suffix);
    },
    corrupt(repo: string, sha: string, path: string, bytes: Uint8Array) {
      served.set(`${repo}@${sha}/${path}`, bytes);
    },
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

export interface ReceivedCommit {
  repo: string;
  revision: string;
  summary: string;
  files: Map<string, Buffer>;
  oid: string;
}

function writeRoutes(options: { tokens: Record<string, 'read' | 'write'>; repos: string[] }, urlOf: () => string) {
  const repos = new Map<string, Map<string, Buffer>>((options.repos ?? []).map((name) => [name, new Map()]));
  const announced = new Map<string, Map<string, number>>();
  const commits: ReceivedCommit[] = [];
  const refusals: string[] = [];

  const send = (res: ServerResponse, status: number, body: unknown): void => {
    res.writeHead(status, { 'Content-Type': 'application/json', 'X-Request-Id': `local-${commits.length}-${Date.now()}` });
    res.end(JSON.stringify(body));
  };
  const refuse = (res: ServerResponse, status: number, error: string): void => {
    refusals.push(`${status} ${error}`);
    send(res, status, { error });
  };
  const scope = (req: IncomingMessage): 'read' | 'write' | undefined => {
    const header = req.headers.authorization ?? '';
    const token = header.startsWith('Bearer ') ? header.slice(7) : '';
    return options.tokens[token];
  };
  const body = async (req: IncomingMessage): Promise<string> => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  };

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      const text = await body(req);
      if (req.method !== 'POST') return refuse(res, 405, `method ${req.method} not implemented`);
      const access = scope(req);
      if (!access) return refuse(res, 401, 'Invalid credentials in Authorization header');

      if (url.pathname === '/api/repos/create') {
        if (access !== 'write') return refuse(res, 403, "You don't have the rights to create a repo: the token is read-only");
        const payload = JSON.parse(text) as { name: string; organization?: string; type?: string };
        if (payload.type !== 'dataset') return refuse(res, 400, `expected a dataset repo, got ${payload.type}`);
        const name = `${payload.organization}/${payload.name}`;
        if (repos.has(name)) return refuse(res, 409, 'You already created this dataset repo');
        repos.set(name, new Map());
        return send(res, 200, { url: `${urlOf()}/datasets/${name}`, name });
      }

      const match = /^\/api\/datasets\/([^/]+\/[^/]+)\/(preupload|commit)\/([^/]+)$/.exec(url.pathname);
      if (!match) return refuse(res, 404, `no route for ${url.pathname}`);
      const [, repo, action, revisionEncoded] = match as unknown as [string, string, string, string];
      const revision = decodeURIComponent(revisionEncoded);
      const files = repos.get(repo);
      if (!files) return refuse(res, 404, `Repository not found: datasets/${repo}`);
      if (access !== 'write') return refuse(res, 403, `You don't have the rights to create a commit in datasets/${repo}`);

      if (action === 'preupload') {
        const payload = JSON.parse(text) as { files?: { path: string; size: number; sample: string }[] };
        if (!Array.isArray(payload.files) || payload.files.length === 0) return refuse(res, 400, 'preupload without files');
        const sizes = announced.get(repo) ?? new Map<string, number>();
        for (const file of payload.files) {
          if (typeof file.path !== 'string' || typeof file.size !== 'number' || typeof file.sample !== 'string') {
            return refuse(res, 400, 'preupload file entries need path, size and sample');
          }
          sizes.set(file.path, file.size);
        }
        announced.set(repo, sizes);
        return send(res, 200, { files: payload.files.map((file) => ({ path: file.path, uploadMode: 'regular', shouldIgnore: false })) });
      }

      // commit: application/x-ndjson, a header line then one line per operation.
      if (!String(req.headers['content-type']).startsWith('application/x-ndjson')) return refuse(res, 400, 'commit body must be application/x-ndjson');
      const lines = text
        .split('\n')
        .filter((line) => line.trim() !== '')
        .map((line) => JSON.parse(line) as { key: string; value: Record<string, unknown> });
      const header = lines[0];
      if (header?.key !== 'header' || typeof header.value.summary !== 'string' || header.value.summary === '') {
        return refuse(res, 400, 'commit must start with a header line that has a summary');
      }
      const sizes = announced.get(repo) ?? new Map<string, number>();
      const received = new Map<string, Buffer>();
      for (const line of lines.slice(1)) {
        if (line.key === 'lfsFile') return refuse(res, 400, `unexpected LFS pointer for ${String(line.value.path)}: it was announced as a regular upload`);
        if (line.key !== 'file') return refuse(res, 400, `unsupported operation ${line.key}`);
        const path = String(line.value.path);
        if (line.value.encoding !== 'base64') return refuse(res, 400, `${path}: encoding must be base64`);
        const content = Buffer.from(String(line.value.content), 'base64');
        if (sizes.get(path) !== content.length) {
          return refuse(res, 400, `${path}: ${content.length} bytes committed, ${String(sizes.get(path))} announced in preupload`);
        }
        received.set(path, content);
      }
      if (received.size === 0) return refuse(res, 400, 'empty commit');
      for (const [path, content] of received) files.set(path, content);
      const oid = createHash('sha1').update(`${repo}:${commits.length}:${header.value.summary}`).digest('hex');
      commits.push({ repo, revision, summary: header.value.summary, files: received, oid });
      return send(res, 200, { commitOid: oid, commitUrl: `${urlOf()}/datasets/${repo}/commit/${oid}` });
    })().catch((error: unknown) => refuse(res, 500, `local hub error: ${(error as Error).message}`));
  };
  return { handler, commits, repos, refusals };
}
