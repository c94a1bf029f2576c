import { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from 'openai';

/**
 * What went wrong with one attempt at a request, and whether trying again can help. Retried: 408, 409, 425, 429
 * and every 5xx, dropped or refused connections, timeouts, and replies cut off or not JSON. Not retried: the other
 * 4xx (the request or the key is wrong: the same request would fail the same way).
 */
export interface Failure {
  kind: 'rate_limited' | 'server_error' | 'timeout' | 'connection' | 'malformed' | 'refused';
  retryable: boolean;
  /** The HTTP status, when the server answered one. */
  status?: number;
  /** One line, as the server or the transport worded it (redacted by the caller before it is shown). */
  message: string;
  /** How long the server asked us to wait (Retry-After / retry-after-ms), in ms. */
  retryAfterMs?: number;
  /** The error reply's body text, when there was one (for the caller's own checks: which parameter was refused). */
  body?: string;
}

const RETRYABLE_STATUSES = new Set([408, 409, 425, 429]);

/** Marks an attempt our own timer stopped (the abort reason), so it is told apart from a cancelled run. */
export class AttemptTimeout extends Error {
  constructor(readonly ms: number) {
    super(`no reply within ${ms / 1000} s`);
  }
}

export function classifyFailure(error: unknown, body: string | undefined, now: number = Date.now()): Failure {
  if (error instanceof AttemptTimeout || error instanceof APIConnectionTimeoutError) {
    return { kind: 'timeout', retryable: true, message: error instanceof AttemptTimeout ? error.message : 'the request timed out' };
  }
  if (error instanceof APIUserAbortError) return { kind: 'timeout', retryable: true, message: 'the request was stopped' };
  if (error instanceof APIConnectionError) {
    return { kind: 'connection', retryable: true, message: connectionMessage(error) };
  }
  if (error instanceof APIError && typeof error.status === 'number') {
    const status = error.status;
    const message = errorText(error, body);
    const retryAfterMs = error.headers ? retryAfter(error.headers, now) : undefined;
    const base = { status, message, body, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) };
    if (status === 429) return { kind: 'rate_limited', retryable: true, ...base };
    if (status >= 500) return { kind: 'server_error', retryable: true, ...base };
    if (RETRYABLE_STATUSES.has(status)) return { kind: 'server_error', retryable: true, ...base };
    return { kind: 'refused', retryable: false, ...base };
  }
  if (error instanceof APIError) {
    // An error event inside a stream (status undefined): the server failed mid-reply.
    return { kind: 'server_error', retryable: true, message: error.message };
  }
  // A reply cut off mid-body (undici's "terminated"), a body that is not JSON, a stream chunk that does not parse.
  const message = error instanceof Error ? error.message : String(error);
  return { kind: 'malformed', retryable: true, message: `the reply was cut off or is not JSON (${message})` };
}

/** The server's own words: its JSON error message, else the body text, else the client's line. */
function errorText(error: APIError, body: string | undefined): string {
  if (body) {
    try {
      const parsed = JSON.parse(body) as { error?: { message?: unknown } | string; message?: unknown; detail?: unknown };
      const inner = typeof parsed.error === 'object' && parsed.error !== null ? parsed.error.message : parsed.error;
      const text = [inner, parsed.message, parsed.detail].find((value) => typeof value === 'string' && value !== '');
      if (typeof text === 'string') return `${error.status} ${text}`;
    } catch {
      // not JSON: the text itself
    }
    const trimmed = body.trim().replace(/\s+/g, ' ');
    if (trimmed !== '') return `${error.status} ${trimmed.slice(0, 300)}`;
  }
  return error.message;
}

function connectionMessage(error: APIConnectionError): string {
  const cause = (error as { cause?: unknown }).cause;
  const code = findCode(cause);
  return code ? `connection failed (${code})` : `connection failed (${error.message})`;
}

function findCode(cause: unknown): string | undefined {
  for (let current = cause, depth = 0; current && depth < 5; depth += 1) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/** Retry-After (seconds or an HTTP date) or OpenAI's retry-after-ms, in ms; undefined when absent or unreadable. */
export function retryAfter(headers: Pick<Headers, 'get'>, now: number = Date.now()): number | undefined {
  const ms = headers.get('retry-after-ms');
  if (ms !== null && ms.trim() !== '' && Number.isFinite(Number(ms)) && Number(ms) >= 0) return Number(ms);
  const value = headers.get('retry-after');
  if (value === null || value.trim() === '') return undefined;
  const seconds = Number(value.trim());
  if (Number.isFinite(seconds)) return seconds >= 0 ? seconds * 1000 : undefined;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/**
 * Exponential backoff with full jitter (a uniform draw from [0, min(cap, base · 2^retry))), and never sooner than
 * the server asked: `retryAfterMs` (capped at `maxRetryAfterMs`, so a server asking for an hour is not waited on
 * silently).
 */
export function backoffMs(
  retry: number,
  options: { baseMs: number; capMs: number; maxRetryAfterMs: number; random: () => number },
  retryAfterMs?: number,
): number {
  const jitter = options.random() * Math.min(options.capMs, options.baseMs * 2 ** retry);
  return retryAfterMs === undefined ? jitter : Math.max(jitter, Math.min(retryAfterMs, options.maxRetryAfterMs));
}
