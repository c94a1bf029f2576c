import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/**
 * A small OpenAI-compatible server for tests (node:http, loopback), speaking the shapes --backend openai uses:
 * GET /v1/models, POST /tokenize (vLLM's), POST /v1/completions (echo + logprobs scoring, streamed sampling) and
 * POST /v1/chat/completions (streamed). Its "model" is deterministic and cheap:
 *
 * - tokens are the text's UTF-8 bytes, id = byte + 2; BOS is id 1, added with add_special_tokens;
 * - the log-probability of a token depends on the token before it only (`bigramLogprob`), so a test can compute
 *   the exact NLL any window plan must give;
 * - a completion is a function of the prompt, the seed and the choice index (`completionFor`).
 *
 * Faults are queued with `inject` (each applies to one matching request) or drawn at random (`randomFaults`):
 * 429 with Retry-After, 500, a hang, a reply cut off mid-JSON, a reset connection, a stream that stalls, slow
 * streams, fewer choices than asked, an error naming n, no prompt logprobs, 401. Every request is recorded.
 */
export type Fault =
  | { kind: '429'; retryAfter?: string }
  | { kind: '500' }
  | { kind: '503'; retryAfter?: string }
  | { kind: 'hang' }
  | { kind: 'truncate' }
  | { kind: 'reset' }
  | { kind: 'stall'; afterChunks?: number }
  | { kind: 'slow'; delayMs: number }
  | { kind: '401' };

export interface FaultServerOptions {
  model?: string;
  /** The key the server requires (Bearer); a wrong or missing one gets 401 naming the key it got. */
  apiKey?: string;
  maxModelLen?: number;
  /** Serve /tokenize (default true). */
  tokenize?: boolean;
  /** Cap n: 'error' answers 400 naming n, 'fewer' returns only this many choices. */
  maxN?: { n: number; how: 'error' | 'fewer' };
  /** Accept max_tokens 0 on echo requests (default true; false: 400 naming max_tokens, as older vLLM). */
  maxTokensZero?: boolean;
  /** Return prompt log-probabilities (default true). */
  logprobs?: boolean;
  /** Apply stop strings server-side and name the one that matched in stop_reason (default true). */
  serverStops?: boolean;
  /** The `server` response header (default fault-server/1.0); `x-fault-version` is sent too. */
  software?: string;
  /** A header value that carries the presented key back (to test that recorded headers are redacted). */
  reflectKeyHeader?: boolean;
  /** Characters per streamed chunk (default 3). */
  chunkChars?: number;
}

export interface RecordedRequest {
  method: string;
  path: string;
  body: Record<string, unknown> | undefined;
  authorization: string | undefined;
  fault: Fault['kind'] | null;
}

export const BOS_ID = 1;

export function tokenize(text: string): number[] {
  return [...Buffer.from(text, 'utf8')].map((byte) => byte + 2);
}

/** log p(token | the token before it): a fixed function of the two ids, in (−5.1, −0.1]. */
export function bigramLogprob(previous: number, token: number): number {
  return -(((previous * 31 + token * 7) % 50) + 1) / 10;
}

/** The NLL of scoring every token of `ids` after the first (any window plan that scores each once gives this). */
export function referenceNll(ids: readonly number[]): number {
  let nll = 0;
  for (let i = 1; i < ids.length; i += 1) nll -= bigramLogprob(ids[i - 1]!, ids[i]!);
  return nll;
}

function hash(text: string): number {
  return createHash('sha256').update(text).digest().readUInt32LE(0);
}

/** The text the model writes for a prompt: a body, then more code that the HumanEval stop list cuts. */
export function completionFor(prompt: string, seed: number, choice: number, temperature: number): string {
  const value = temperature === 0 ? hash(prompt) % 1000 : hash(`${prompt}\0${seed}\0${choice}`) % 1000;
  return `    return ${value}\n\n\ndef helper_${value}():\n    pass\n`;
}

export class FaultServer {
  readonly requests: RecordedRequest[] = [];
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private readonly queue: { fault: Fault; path: string | undefined }[] = [];
  private random: { rate: number; kinds: Fault[]; next: () => number; paths?: string[] } | undefined;
  private readonly hanging = new Set<ServerResponse>();
  url = '';

  constructor(readonly options: FaultServerOptions = {}) {
    this.server = createServer((request, response) => {
      void this.handle(request, response).catch(() => response.destroy());
    });
    this.server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
  }

  get model(): string {
    return this.options.model ?? 'fault-model';
  }

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    const { port } = this.server.address() as AddressInfo;
    this.url = `http://127.0.0.1:${port}/v1`;
    return this.url;
  }

  async stop(): Promise<void> {
    for (const response of this.hanging) response.destroy();
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** The next `count` requests to `path` (any path when undefined) get this fault. */
  inject(fault: Fault, options: { path?: string; count?: number } = {}): void {
    for (let i = 0; i < (options.count ?? 1); i += 1) this.queue.push({ fault, path: options.path });
  }

  /** Every request to `paths` (default: completions) gets one of `kinds` with probability `rate` (seeded). */
  randomFaults(rate: number, kinds: Fault[], seed: number, paths?: string[]): void {
    let state = seed >>> 0 || 1;
    const next = (): number => {
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      return (state >>> 0) / 0x1_0000_0000;
    };
    this.random = { rate, kinds, next, ...(paths ? { paths } : {}) };
  }

  clearFaults(): void {
    this.queue.length = 0;
    this.random = undefined;
  }

  count(path: string, predicate: (request: RecordedRequest) => boolean = () => true): number {
    return this.requests.filter((request) => request.path === path && predicate(request)).length;
  }

  private takeFault(path: string): Fault | undefined {
    const at = this.queue.findIndex((entry) => entry.path === undefined || entry.path === path);
    if (at >= 0) return this.queue.splice(at, 1)[0]!.fault;
    const random = this.random;
    const paths = random?.paths ?? ['/v1/completions', '/v1/chat/completions'];
    if (random && paths.includes(path) && random.next() < random.rate) return random.kinds[Math.floor(random.next() * random.kinds.length)];
    return undefined;
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const body = text ? (JSON.parse(text) as Record<string, unknown>) : undefined;
    const path = (request.url ?? '/').split('?')[0]!;
    const authorization = request.headers.authorization;
    const fault = this.takeFault(path);
    this.requests.push({ method: request.method ?? 'GET', path, body, authorization, fault: fault?.kind ?? null });
    const headers: Record<string, string> = { server: this.options.software ?? 'fault-server/1.0', 'x-fault-version': '1.0' };
    if (this.options.reflectKeyHeader && authorization) headers['x-upstream-version'] = `proxy/2 (${authorization})`;
    if (this.options.apiKey !== undefined && authorization !== `Bearer ${this.options.apiKey}`) {
      return this.json(
        response,
        401,
        { error: { message: `Incorrect API key provided: ${authorization ?? '(none)'}`, type: 'invalid_request_error' } },
        headers,
      );
    }
    if (fault && fault.kind !== 'stall' && fault.kind !== 'slow' && fault.kind !== 'truncate') {
      switch (fault.kind) {
        case '429':
          return this.json(
            response,
            429,
            { error: { message: 'rate limited' } },
            { ...headers, ...(fault.retryAfter ? { 'retry-after': fault.retryAfter } : {}) },
          );
        case '500':
          return this.json(response, 500, { error: { message: 'internal server error' } }, headers);
        case '503':
          return this.json(
            response,
            503,
            { error: { message: 'overloaded' } },
            { ...headers, ...(fault.retryAfter ? { 'retry-after': fault.retryAfter } : {}) },
          );
        case '401':
          return this.json(response, 401, { error: { message: `Incorrect API key provided: ${authorization ?? '(none)'}` } }, headers);
        case 'hang':
          this.hanging.add(response);
          response.once('close', () => this.hanging.delete(response));
          return;
        case 'reset':
          request.socket.destroy();
          return;
      }
    }
    if (request.method === 'GET' && path === '/v1/models') {
      return this.json(
        response,
        200,
        { object: 'list', data: [{ id: this.model, object: 'model', owned_by: 'evalpipe-tests', max_model_len: this.options.maxModelLen ?? 2048 }] },
        headers,
        fault,
      );
    }
    if (request.method === 'POST' && path === '/tokenize' && this.options.tokenize !== false) {
      const ids = tokenize(String(body?.prompt ?? ''));
      const tokens = body?.add_special_tokens ? [BOS_ID, ...ids] : ids;
      return this.json(response, 200, { tokens, count: tokens.length, max_model_len: this.options.maxModelLen ?? 2048 }, headers, fault);
    }
    if (request.method === 'POST' && (path === '/v1/completions' || path === '/v1/chat/completions')) {
      if (body?.model !== this.model) return this.json(response, 404, { error: { message: `The model \`${String(body?.model)}\` does not exist.` } }, headers);
      const n = Number(body.n ?? 1);
      const cap = this.options.maxN;
      if (cap && n > cap.n && cap.how === 'error') {
        return this.json(response, 400, { object: 'error', message: `n must be at most ${cap.n}, got ${n}`, type: 'BadRequestError', code: 400 }, headers);
      }
      const choices = cap && cap.how === 'fewer' ? Math.min(n, cap.n) : n;
      if (body.echo) return this.echo(response, body, headers, fault);
      return this.sample(response, body, path === '/v1/chat/completions', choices, headers, fault);
    }
    return this.json(response, 404, { error: { message: `no route ${request.method} ${path}` } }, headers);
  }

  private echo(response: ServerResponse, body: Record<string, unknown>, headers: Record<string, string>, fault: Fault | undefined): void {
    const maxTokens = Number(body.max_tokens ?? 16);
    if (maxTokens === 0 && this.options.maxTokensZero === false) {
      // vLLM's older error shape: no `error` field, the message at the top.
      return this.json(response, 400, { object: 'error', message: 'max_tokens must be at least 1, got 0.', type: 'BadRequestError', code: 400 }, headers);
    }
    const prompt = body.prompt as number[];
    const logprobs: (number | null)[] = prompt.map((token, i) => (i === 0 ? null : bigramLogprob(prompt[i - 1]!, token)));
    if (maxTokens > 0) logprobs.push(-0.5);
    const choice = {
      index: 0,
      text: '',
      finish_reason: 'length',
      logprobs: this.options.logprobs === false ? null : { token_logprobs: logprobs, tokens: prompt.map(String) },
    };
    this.json(response, 200, { id: 'cmpl-echo', object: 'text_completion', model: this.model, choices: [choice] }, headers, fault);
  }

  private async sample(
    response: ServerResponse,
    body: Record<string, unknown>,
    chat: boolean,
    choices: number,
    headers: Record<string, string>,
    fault: Fault | undefined,
  ): Promise<void> {
    const seed = Number(body.seed ?? 0);
    const temperature = Number(body.temperature ?? 1);
    const maxTokens = Number(body.max_tokens ?? 16);
    const stops = Array.isArray(body.stop) ? (body.stop as string[]) : typeof body.stop === 'string' ? [body.stop] : [];
    const prompt = chat ? chatProblem(body) : String(body.prompt ?? '');
    const outputs = Array.from({ length: choices }, (_, index) => {
      let text = chat
        ? `Sure:\n\`\`\`python\n${prompt.trim()}\n    return ${hash(prompt) % 1000}\n\`\`\`\nDone.`
        : completionFor(prompt, seed, index, temperature);
      let finish = 'stop';
      let stopReason: string | null = null;
      if (this.options.serverStops !== false && stops.length > 0) {
        let best: { at: number; stop: string } | undefined;
        for (const stop of stops) {
          const at = text.indexOf(stop);
          if (at >= 0 && (!best || at < best.at)) best = { at, stop };
        }
        if (best) {
          text = text.slice(0, best.at);
          stopReason = best.stop;
        }
      }
      if (text.length > maxTokens) {
        text = text.slice(0, maxTokens);
        finish = 'length';
        stopReason = null;
      }
      return { text, finish, stopReason };
    });
    if (!body.stream) {
      const list = outputs.map((output, index) =>
        chat
          ? { index, message: { role: 'assistant', content: output.text }, finish_reason: output.finish }
          : { index, text: output.text, finish_reason: output.finish, stop_reason: output.stopReason, logprobs: null },
      );
      return this.json(response, 200, { id: 'cmpl-1', object: chat ? 'chat.completion' : 'text_completion', model: this.model, choices: list }, headers, fault);
    }
    response.writeHead(200, { ...headers, 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    const size = this.options.chunkChars ?? 3;
    const events: string[] = [];
    const pieces = outputs.map((output) => Array.from({ length: Math.ceil(output.text.length / size) }, (_, i) => output.text.slice(i * size, (i + 1) * size)));
    const longest = Math.max(0, ...pieces.map((list) => list.length));
    for (let step = 0; step < longest; step += 1) {
      for (const [index, list] of pieces.entries()) {
        const piece = list[step];
        if (piece === undefined) continue;
        events.push(JSON.stringify(chunkOf(chat, this.model, index, piece, null, null)));
      }
    }
    for (const [index, output] of outputs.entries()) events.push(JSON.stringify(chunkOf(chat, this.model, index, '', output.finish, output.stopReason)));
    const usage = outputs.reduce((sum, output) => sum + output.text.length, 0);
    const streamOptions = body.stream_options as { include_usage?: boolean } | undefined;
    if (streamOptions?.include_usage)
      events.push(
        JSON.stringify({
          id: 'cmpl-1',
          object: 'text_completion',
          model: this.model,
          choices: [],
          usage: { prompt_tokens: 1, completion_tokens: usage, total_tokens: usage + 1 },
        }),
      );
    events.push('[DONE]');
    const cutAt =
      fault?.kind === 'truncate'
        ? Math.max(1, Math.floor(events.length / 2))
        : fault?.kind === 'stall'
          ? Math.min(events.length - 1, fault.afterChunks ?? 2)
          : -1;
    for (const [i, event] of events.entries()) {
      if (i === cutAt) {
        if (fault?.kind === 'truncate') {
          response.write(`data: ${event.slice(0, Math.max(1, Math.floor(event.length / 2)))}\n\n`);
          response.end();
        } else {
          this.hanging.add(response);
          response.once('close', () => this.hanging.delete(response));
        }
        return;
      }
      response.write(`data: ${event}\n\n`);
      if (fault?.kind === 'slow') await new Promise((resolve) => setTimeout(resolve, fault.delayMs));
    }
    response.end();
  }

  private json(response: ServerResponse, status: number, value: unknown, headers: Record<string, string>, fault?: Fault): void {
    const text = JSON.stringify(value);
    response.writeHead(status, { ...headers, 'content-type': 'application/json' });
    if (fault?.kind === 'truncate') {
      response.write(text.slice(0, Math.floor(text.length / 2)));
      response.socket?.destroy();
      return;
    }
    response.end(text);
  }
}

function chunkOf(chat: boolean, model: string, index: number, piece: string, finish: string | null, stopReason: string | null): unknown {
  return chat
    ? { id: 'chat-1', object: 'chat.completion.chunk', model, choices: [{ index, delta: piece ? { content: piece } : {}, finish_reason: finish }] }
    : {
        id: 'cmpl-1',
        object: 'text_completion',
        model,
        choices: [{ index, text: piece, finish_reason: finish, ...(finish ? { stop_reason: stopReason } : {}) }],
      };
}

/** The problem inside a chat request (the instruct prompt's ```python block). */
function chatProblem(body: Record<string, unknown>): string {
  const messages = (body.messages ?? []) as { role: string; content: string }[];
  const user = messages.find((message) => message.role === 'user')?.content ?? '';
  return /```python\n([\s\S]*?)\n```/.exec(user)?.[1] ?? user;
}
