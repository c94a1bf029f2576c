import { setTimeout as delay } from 'node:timers/promises';
import type { LimitFunction } from 'p-limit';
import { EvalpipeError } from '../../util/errors.js';
import { log } from '../../util/log.js';
import { RemoteServerError } from './openai-errors.js';
import type { Redactor } from './redact.js';
import { AttemptTimeout, backoffMs, classifyFailure, type Failure } from './retry-policy.js';

export interface RunnerOptions {
  /** How long one attempt may wait for the reply (a streamed one: for each next chunk). */
  timeoutMs: number;
  /** Retries per request after a retryable failure. */
  maxRetries: number;
  /** Failed attempts in a row, over all requests, that stop the stage (the circuit breaker). */
  breakerThreshold: number;
  baseDelayMs: number;
  maxDelayMs: number;
  maxRetryAfterMs: number;
  random: () => number;
  /** The server as messages name it (its base URL). */
  server: string;
  redactor: Redactor;
  /** The body text of an error reply, found by its headers (the fetch wrapper keeps them). */
  errorBody: (headers: unknown) => string | undefined;
}

export interface AttemptContext {
  /** Aborted when the attempt times out or the run is cancelled: pass it to every request. */
  signal: AbortSignal;
  /** A chunk arrived: the attempt's timeout starts again (streams). */
  touch(): void;
  /** Some of the request's work is done and kept (a streamed sample): the request's retry count starts again. */
  progressed(): void;
  /** Throws the timeout or cancellation when `signal` was aborted (the openai stream ends silently on abort). */
  throwIfAborted(): void;
}

/**
 * A refusal that trying again cannot fix (a 4xx other than 408/409/425/429), for the caller to map to its
 * own error (a refused key, an unknown model, a parameter the server does not take).
 */
export class RequestRefused extends Error {
  constructor(readonly failure: Failure) {
    super(failure.message);
  }
}

/**
 * Every request to the server goes through here: at most `limit`'s count in flight (p-limit; a request waiting
 * out its backoff holds no slot), each attempt bounded by `timeoutMs`, retried after retryable failures with
 * exponential backoff and full jitter (never sooner than Retry-After), and a circuit breaker that stops every
 * request with one line once `breakerThreshold` attempts in a row have failed (429s neither count nor reset it:
 * the server is up and asking us to slow down; each request's own retry limit still bounds them).
 */
export class RequestRunner {
  private consecutiveFailures = 0;
  private broken: RemoteServerError | undefined;

  constructor(
    private readonly options: RunnerOptions,
    private readonly limit: LimitFunction,
  ) {}

  /**
   * Run `attempt` until it succeeds. `adapt` sees each refusal first: it may change what the next attempt sends
   * (a smaller n, max_tokens 1) and return true to try again at once; otherwise the refusal is thrown as
   * RequestRefused. A cancelled run throws the signal's reason.
   */
  async run<T>(
    what: string,
    attempt: (context: AttemptContext) => Promise<T>,
    options: { signal?: AbortSignal | undefined; adapt?: (failure: Failure) => boolean } = {},
  ): Promise<T> {
    let retries = 0;
    let adaptations = 0;
    for (;;) {
      options.signal?.throwIfAborted();
      if (this.broken) throw this.broken;
      let progressed = false;
      const outcome = await this.limit(() => this.attemptOnce(attempt, options.signal, () => (progressed = true)));
      if (progressed) {
        retries = 0;
        this.consecutiveFailures = 0;
      }
      if (outcome.ok) {
        this.consecutiveFailures = 0;
        return outcome.value;
      }
      const failure = outcome.failure;
      if (!failure.retryable) {
        if (options.adapt && adaptations < 8 && options.adapt(failure)) {
          adaptations += 1;
          continue;
        }
        throw new RequestRefused(failure);
      }
      if (failure.kind !== 'rate_limited') {
        this.consecutiveFailures += 1;
        if (this.consecutiveFailures >= this.options.breakerThreshold) this.trip(failure);
      }
      if (this.broken) throw this.broken;
      if (retries >= this.options.maxRetries) {
        throw new RemoteServerError(
          this.redact(`${what}: ${this.options.server} failed ${retries + 1} attempt${retries === 0 ? '' : 's'} (last: ${failure.message})`),
          { hint: 'check the server (or raise --max-retries / --request-timeout); finished work is kept: run the same command again to resume' },
        );
      }
      const wait = backoffMs(
        retries,
        { baseMs: this.options.baseDelayMs, capMs: this.options.maxDelayMs, maxRetryAfterMs: this.options.maxRetryAfterMs, random: this.options.random },
        failure.retryAfterMs,
      );
      const note = failure.retryAfterMs === undefined ? '' : ` (the server asked for ${Math.round(failure.retryAfterMs / 100) / 10} s)`;
      log.debug(this.redact(`${what}: ${failure.message}; retry ${retries + 1}/${this.options.maxRetries} in ${Math.round(wait)} ms${note}`));
      retries += 1;
      await delay(wait, undefined, options.signal ? { signal: options.signal } : undefined).catch(() => options.signal?.throwIfAborted());
    }
  }

  private async attemptOnce<T>(
    attempt: (context: AttemptContext) => Promise<T>,
    signal: AbortSignal | undefined,
    onProgress: () => void,
  ): Promise<{ ok: true; value: T } | { ok: false; failure: Failure }> {
    signal?.throwIfAborted();
    if (this.broken) throw this.broken;
    const timer = new AbortController();
    const timeoutMs = this.options.timeoutMs;
    let handle = setTimeout(() => timer.abort(new AttemptTimeout(timeoutMs)), timeoutMs);
    const combined = signal ? AbortSignal.any([signal, timer.signal]) : timer.signal;
    const context: AttemptContext = {
      signal: combined,
      touch: () => {
        clearTimeout(handle);
        if (!timer.signal.aborted) handle = setTimeout(() => timer.abort(new AttemptTimeout(timeoutMs)), timeoutMs);
      },
      progressed: onProgress,
      throwIfAborted: () => {
        signal?.throwIfAborted();
        if (timer.signal.aborted) throw timer.signal.reason;
      },
    };
    try {
      return { ok: true, value: await attempt(context) };
    } catch (error) {
      if (signal?.aborted) throw signal.reason ?? error;
      // Our own verdicts on a reply we read (a refusal, no prompt logprobs) are final; anything else is the transport's.
      if (error instanceof EvalpipeError || error instanceof RequestRefused) throw error;
      const cause = timer.signal.aborted ? timer.signal.reason : error;
      return { ok: false, failure: classifyFailure(cause, this.options.errorBody((error as { headers?: unknown }).headers)) };
    } finally {
      clearTimeout(handle);
    }
  }

  private trip(failure: Failure): never {
    this.broken = new RemoteServerError(
      this.redact(`${this.options.server} failed ${this.consecutiveFailures} requests in a row (last: ${failure.message}); stopping`),
      { hint: 'check that the server is up and serving the model; finished work is kept: run the same command again to resume' },
    );
    throw this.broken;
  }

  private redact(text: string): string {
    return this.options.redactor.redact(text);
  }
}
