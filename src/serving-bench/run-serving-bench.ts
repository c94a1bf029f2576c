import OpenAI from 'openai';
import { setMaxListeners } from 'node:events';
import { VERSION as OPENAI_VERSION } from 'openai/version';
import { EvalpipeError, UsageError } from '../util/errors.js';
import { packageVersion } from '../util/package-root.js';
import { runLevel, timeOneRequest, type ServingRequestShape } from './serving-load.js';
import { summariseLevel, type ServingLevel } from './serving-stats.js';

export interface ServingBenchOptions extends ServingRequestShape {
  baseUrl: string;
  /** The API key (from the environment); never written anywhere. */
  apiKey?: string;
  concurrencies: number[];
  /** Requests per level; default: max(32, 4 × concurrency). */
  requests?: number;
  /** The prompts, loaded once the server has answered (so a wrong URL is told before a data set is fetched). */
  loadPrompts: () => Promise<string[]>;
  promptSource: string;
  signal?: AbortSignal;
  onLevel?: (level: ServingLevel) => void;
}

/** What a serving benchmark was run against and with: the recorded header of bench/results/serving-*.json. */
export interface ServingHeader {
  kind: 'serving';
  date: string;
  base_url: string;
  model: string;
  /** The server's own description: its `server` header and what GET /models said about the model. */
  server: { software: string | null; model_card: Record<string, unknown> | null };
  settings: { max_tokens: number; ignore_eos: boolean; temperature: number; prompts: string; n_prompts: number };
  client: { evalpipe: string; openai: string; node: string };
}

export function requestsAt(concurrency: number, requests?: number): number {
  return requests ?? Math.max(32, 4 * concurrency);
}

/**
 * Time a model server as serving users measure it (after vLLM's benchmark_serving): for each concurrency, a
 * closed loop of streamed completions; time to first token, time per output token, inter-token latency and
 * end-to-end latency (mean, p50, p90, p99), and request and token throughput. One warm-up request first, not
 * counted. Works against any OpenAI-compatible endpoint, ours (`evalpipe engine serve --http`) included.
 */
export async function runServingBench(options: ServingBenchOptions): Promise<{ header: ServingHeader; levels: ServingLevel[] }> {
  // Every request in flight listens on the one cancel signal (the client adds more than one listener each): no
  // bound, as each request removes its own when it ends.
  if (options.signal) setMaxListeners(0, options.signal);
  const card = await describeServer(options);
  const prompts = await options.loadPrompts();
  const client = new OpenAI({ baseURL: options.baseUrl, apiKey: options.apiKey || 'none', maxRetries: 0, timeout: options.timeoutMs });
  const warm = await timeOneRequest(client, options, prompts[0]!, options.signal);
  if (!warm.ok) {
    throw new EvalpipeError('serving_bench', `the warm-up request to ${options.baseUrl} failed: ${warm.error}`, {
      hint: options.ignoreEos ? 'a server that does not know ignore_eos may refuse it: try --no-ignore-eos' : 'check --base-url, --model and the API key',
    });
  }
  const levels: ServingLevel[] = [];
  for (const concurrency of options.concurrencies) {
    const { timings, durationS } = await runLevel(client, options, prompts, {
      concurrency,
      requests: requestsAt(concurrency, options.requests),
      signal: options.signal,
    });
    const level = summariseLevel(concurrency, timings, durationS);
    levels.push(level);
    options.onLevel?.(level);
  }
  const header: ServingHeader = {
    kind: 'serving',
    date: new Date().toISOString(),
    base_url: options.baseUrl,
    model: options.model,
    server: card,
    settings: {
      max_tokens: options.maxTokens,
      ignore_eos: options.ignoreEos,
      temperature: options.temperature,
      prompts: options.promptSource,
      n_prompts: prompts.length,
    },
    client: {
      evalpipe: packageVersion(),
      openai: OPENAI_VERSION,
      node: process.version,
    },
  };
  return { header, levels };
}

/** GET <base>/models: the server's software header and its card for the model; one clear line when unreachable. */
async function describeServer(options: ServingBenchOptions): Promise<ServingHeader['server']> {
  let response: Response;
  try {
    response = await fetch(`${options.baseUrl}/models`, {
      headers: options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {},
      signal: options.signal ? AbortSignal.any([options.signal, AbortSignal.timeout(options.timeoutMs)]) : AbortSignal.timeout(options.timeoutMs),
    });
  } catch (error) {
    options.signal?.throwIfAborted();
    throw new UsageError(`cannot reach ${options.baseUrl}/models: ${error instanceof Error ? error.message : String(error)}`, {
      hint: 'start the server first, or correct --base-url (it ends in /v1 for most servers)',
    });
  }
  if (response.status === 401 || response.status === 403) {
    throw new UsageError(`${options.baseUrl}/models refused the API key (HTTP ${response.status})`, {
      hint: 'set the key in the variable --api-key-env names',
    });
  }
  const body = (await response.json().catch(() => null)) as { data?: { id?: string }[] } | null;
  const models = Array.isArray(body?.data) ? body.data : [];
  const card = models.find((model) => model.id === options.model);
  if (response.ok && models.length > 0 && !card) {
    throw new UsageError(`${options.baseUrl} does not serve model ${options.model}`, { hint: `use --model ${models.map((model) => model.id).join(' or ')}` });
  }
  return { software: response.headers.get('server'), model_card: (card as Record<string, unknown> | undefined) ?? null };
}
