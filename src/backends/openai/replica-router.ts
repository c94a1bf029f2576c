import { log } from '../../util/log.js';

/** Replies that say the replica, not the request, is in trouble: it is set aside and the request goes elsewhere. */
const REPLICA_FAILURE_STATUSES = new Set([500, 502, 503, 504]);

/** How long a failed replica is set aside: doubling with each failure in a row, from 1 s up to 30 s. */
const COOLDOWN_BASE_MS = 1000;
const COOLDOWN_CAP_MS = 30_000;

interface Replica {
  baseUrl: string;
  rootUrl: string;
  /** Requests sent and not yet answered to the end (a stream counts until its last chunk). */
  outstanding: number;
  requests: number;
  failures: number;
  /** Failures in a row; 0 after an answer. */
  streak: number;
  downUntil: number;
}

/** One replica's share of the work, as the log and the tests read it. */
export interface ReplicaStats {
  base_url: string;
  requests: number;
  failures: number;
}

/**
 * Several OpenAI-compatible servers of one model (--base-url given more than once) used as one: every HTTP request
 * the openai client makes goes to the replica with the fewest requests outstanding (ties: the one that has had
 * fewer), so a slow or busy replica gets less. A replica that drops the connection or answers 500/502/503/504 is
 * set aside for a cooldown and the same request is sent at once to another one; when every replica is set aside
 * the one that comes back soonest is tried, and the failure, if it stays, goes to the RequestRunner's retries and
 * breaker as with one server. URLs are mapped by prefix: the first replica's base URL (or its root, for /tokenize)
 * is replaced by the chosen replica's.
 */
export class ReplicaRouter {
  private readonly replicas: Replica[];

  constructor(
    baseUrls: readonly string[],
    private readonly now: () => number = Date.now,
  ) {
    this.replicas = baseUrls.map((baseUrl) => ({
      baseUrl,
      rootUrl: baseUrl.replace(/\/v1$/, ''),
      outstanding: 0,
      requests: 0,
      failures: 0,
      streak: 0,
      downUntil: 0,
    }));
  }

  stats(): ReplicaStats[] {
    return this.replicas.map((replica) => ({ base_url: replica.baseUrl, requests: replica.requests, failures: replica.failures }));
  }

  async fetch(input: string | URL | Request, init?: RequestInit): Promise<Response> {
    const url = input instanceof Request ? undefined : String(input);
    const path = url === undefined ? undefined : this.pathOf(url);
    // A request we cannot map or replay (a Request object, a streamed body) goes where it was addressed.
    if (path === undefined || (init?.body !== undefined && init.body !== null && typeof init.body !== 'string')) return fetch(input, init);
    const tried = new Set<Replica>();
    for (;;) {
      const replica = this.pick(tried);
      tried.add(replica);
      const more = tried.size < this.replicas.length;
      replica.outstanding += 1;
      replica.requests += 1;
      let release: (() => void) | undefined = once(() => (replica.outstanding -= 1));
      try {
        const response = await fetch(path.kind === 'base' ? replica.baseUrl + path.rest : replica.rootUrl + path.rest, init);
        if (REPLICA_FAILURE_STATUSES.has(response.status)) {
          this.failed(replica, `HTTP ${response.status}`);
          if (more) {
            await response.body?.cancel().catch(() => undefined);
            continue;
          }
        } else {
          replica.streak = 0;
        }
        const tracked = trackBody(response, release);
        release = undefined;
        return tracked;
      } catch (error) {
        if (init?.signal?.aborted) throw error;
        this.failed(replica, error instanceof Error ? error.message : String(error));
        if (!more) throw error;
      } finally {
        release?.();
      }
    }
  }

  /** The request's path after the first replica's base URL or root, or undefined when it is addressed elsewhere. */
  private pathOf(url: string): { kind: 'base' | 'root'; rest: string } | undefined {
    const first = this.replicas[0]!;
    const after = (prefix: string) => (url === prefix || /^[/?#]/.test(url.slice(prefix.length)) ? url.slice(prefix.length) : undefined);
    if (url.startsWith(first.baseUrl)) {
      const rest = after(first.baseUrl);
      if (rest !== undefined) return { kind: 'base', rest };
    }
    if (url.startsWith(first.rootUrl)) {
      const rest = after(first.rootUrl);
      if (rest !== undefined) return { kind: 'root', rest };
    }
    return undefined;
  }

  private pick(tried: ReadonlySet<Replica>): Replica {
    const now = this.now();
    const untried = this.replicas.filter((replica) => !tried.has(replica));
    const candidates = untried.length > 0 ? untried : this.replicas;
    const up = candidates.filter((replica) => replica.downUntil <= now);
    if (up.length === 0) return candidates.reduce((best, replica) => (replica.downUntil < best.downUntil ? replica : best));
    return up.reduce((best, replica) =>
      replica.outstanding < best.outstanding || (replica.outstanding === best.outstanding && replica.requests < best.requests) ? replica : best,
    );
  }

  private failed(replica: Replica, why: string): void {
    replica.failures += 1;
    replica.streak += 1;
    const cooldown = Math.min(COOLDOWN_CAP_MS, COOLDOWN_BASE_MS * 2 ** (replica.streak - 1));
    replica.downUntil = this.now() + cooldown;
    if (this.replicas.length > 1) log.debug(`openai: replica ${replica.baseUrl} failed (${why}); set aside for ${cooldown / 1000} s`);
  }
}

function once(work: () => void): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    work();
  };
}

/** The same response, with `release` called when its body has been read to the end, cancelled or failed. */
function trackBody(response: Response, release: () => void): Response {
  if (!response.body) {
    release();
    return response;
  }
  const reader = response.body.getReader();
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done, value } = await reader.read();
        if (done) {
          release();
          controller.close();
        } else {
          controller.enqueue(value);
        }
      } catch (error) {
        release();
        controller.error(error);
      }
    },
    async cancel(reason) {
      release();
      await reader.cancel(reason).catch(() => undefined);
    },
  });
  return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers });
}
