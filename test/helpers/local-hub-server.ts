import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A hub on 127.0.0.1 that implements the endpoints @huggingface/hub's createRepo and commit call for small files
 * (POST /api/repos/create, /api/datasets/<repo>/preupload/<rev>, /api/datasets/<repo>/commit/<rev>), with
 * token scopes, and checks each commit it receives: the header, every file announced in preupload with the same
 * size, base64 that decodes, no LFS pointers for files it said to upload inline.
 */
export interface ReceivedCommit {
  repo: string;
  revision: string;
  summary: string;
  files: Map<string, Buffer>;
  oid: string;
}

export interface LocalHub {
  url: string;
  commits: ReceivedCommit[];
  repos: Map<string, Map<string, Buffer>>;
  /** Requests that the server refused, with why (for assertions). */
  refusals: string[];
  close(): Promise<void>;
}

export async function startLocalHub(options: { tokens: Record<string, 'read' | 'write'>; repos?: string[] }): Promise<LocalHub> {
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

  const server: Server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      const text = await body(req);
      if (req.method !== 'POST') return refuse(res, 405, `method ${req.method} not implemented`);
      const access = scope(req);
      if (!access) return refuse(res, 401, 'Invalid credentials in Authorization header');

      if (url.pathname === '/api/repos/create') {
        if (access !== 'write') return refuse(res, 403, 'You don\'t have the rights to create a repo: the token is read-only');
        const payload = JSON.parse(text) as { name: string; organization?: string; type?: string };
        if (payload.type !== 'dataset') return refuse(res, 400, `expected a dataset repo, got ${payload.type}`);
        const name = `${payload.organization}/${payload.name}`;
        if (repos.has(name)) return refuse(res, 409, 'You already created this dataset repo');
        repos.set(name, new Map());
        return send(res, 200, { url: `${urlOf(server)}/datasets/${name}`, name });
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
      const lines = text.split('\n').filter((line) => line.trim() !== '').map((line) => JSON.parse(line) as { key: string; value: Record<string, unknown> });
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
      return send(res, 200, { commitOid: oid, commitUrl: `${urlOf(server)}/datasets/${repo}/commit/${oid}` });
    })().catch((error: unknown) => refuse(res, 500, `local hub error: ${(error as Error).message}`));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: urlOf(server),
    commits,
    repos,
    refusals,
    close: () => new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve()))),
  };
}

function urlOf(server: Server): string {
  const address = server.address() as AddressInfo;
  return `http://127.0.0.1:${address.port}`;
}
