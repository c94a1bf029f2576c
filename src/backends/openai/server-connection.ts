import OpenAI from 'openai';
import type { Redactor } from './redact.js';
import { ReplicaRouter } from './replica-router.js';

/** Response headers that name the server's software or version: what the manifest records about the server. */
const SOFTWARE_HEADER = /^(server|x-powered-by|openai-version|x-[a-z0-9-]*(version|server|engine|software)[a-z0-9-]*)$/;

/**
 * The openai client for one server, with its own retries off (maxRetries 0: RequestRunner's are the only ones),
 * no logging, and a fetch that keeps two things the client drops: the body of an error reply (vLLM's older error
 * shape has no `error` field, so the client's message would be "400 status code (no body)") and the headers that
 * name the server's software. With no API key no Authorization header is sent at all.
 */
export class ServerConnection {
  readonly client: OpenAI;
  /** The server's root: the base URL without a trailing /v1 (vLLM serves /tokenize there). */
  readonly rootUrl: string;
  private readonly errorBodies = new WeakMap<object, string>();
  private readonly softwareHeaders = new Map<string, string>();
  /** Spreads requests over the replicas (replica-router.ts); undefined with one server. */
  readonly router: ReplicaRouter | undefined;

  constructor(
    readonly baseUrl: string,
    apiKey: string | undefined,
    private readonly redactor: Redactor,
    timeoutMs: number,
    /** Every replica's base URL (baseUrl first) when several serve the model: requests are spread over them. */
    replicas: readonly string[] = [],
  ) {
    this.router = replicas.length > 1 ? new ReplicaRouter(replicas) : undefined;
    this.rootUrl = baseUrl.replace(/\/v1$/, '');
    this.client = new OpenAI({
      baseURL: baseUrl,
      // The client insists on a key; without one it gets a placeholder whose header is then removed (null).
      apiKey: apiKey ?? 'no-key',
      ...(apiKey ? {} : { defaultHeaders: { Authorization: null } }),
      organization: null,
      project: null,
      maxRetries: 0,
      timeout: timeoutMs,
      logLevel: 'off',
      fetch: (input, init) => this.fetch(input, init),
    });
  }

  /** The body of the error reply whose headers these are (the APIError carries them). */
  errorBody(headers: unknown): string | undefined {
    return typeof headers === 'object' && headers !== null ? this.errorBodies.get(headers) : undefined;
  }

  /** The software headers seen so far (names lowercased, values redacted and cut to 200 characters). */
  software(): Record<string, string> {
    return Object.fromEntries([...this.softwareHeaders].sort(([a], [b]) => a.localeCompare(b)));
  }

  private async fetch(input: string | URL | Request, init?: RequestInit): Promise<Response> {
    const response = await (this.router ? this.router.fetch(input, init) : fetch(input, init));
    response.headers.forEach((value, name) => {
      const key = name.toLowerCase();
      if (SOFTWARE_HEADER.test(key)) this.softwareHeaders.set(key, this.redactor.redact(value).slice(0, 200));
    });
    if (!response.ok) {
      const text = await response
        .clone()
        .text()
        .catch(() => '');
      this.errorBodies.set(response.headers, text);
    }
    return response;
  }
}
