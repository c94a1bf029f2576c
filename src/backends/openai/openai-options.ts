import { resolve } from 'node:path';
import { UsageError } from '../../util/errors.js';
import { flagBoolean, flagNumber, flagString, flagStrings, nonNegativeInt, positiveInt, positiveNumber, type Flags } from '../../util/option-values.js';

/** The variable the API key is read from when --api-key-env is not given (the openai clients' own default). */
export const DEFAULT_API_KEY_ENV = 'OPENAI_API_KEY';
export const DEFAULT_REQUEST_TIMEOUT_S = 300;
export const DEFAULT_MAX_RETRIES = 6;
export const DEFAULT_BACKEND_CONCURRENCY = 8;

/** The flags of --backend openai (no yargs defaults: a flag given with another backend is refused). */
export const OPENAI_OPTIONS = {
  'base-url': {
    type: 'string',
    describe:
      "--backend openai: the server's OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1 (required; the first is part of the run's identity); several (repeated or a comma list): replicas of one model, each request to the one with the fewest outstanding, a failing one's requests sent to the others",
  },
  'api-key-env': {
    type: 'string',
    describe: `--backend openai: the environment variable holding the API key; unset or empty sends none (local servers) [default: ${DEFAULT_API_KEY_ENV}]`,
  },
  chat: {
    type: 'boolean',
    describe:
      "--backend openai: HumanEval through /v1/chat/completions with evalplus's instruct prompt, the code taken from the reply [default: /v1/completions]",
  },
  tokenizer: {
    type: 'string',
    describe:
      '--backend openai: a local tokenizer (tokenizer.json, its model directory, or preset:tiny-starcoder2) for perplexity windows when the server has no /tokenize',
  },
  'request-timeout': {
    type: 'number',
    describe: `--backend openai: seconds to wait for a reply (a streamed one: between two chunks) before retrying [default: ${DEFAULT_REQUEST_TIMEOUT_S}]`,
  },
  'max-retries': {
    type: 'number',
    describe: `--backend openai: retries per request after 429, 5xx, timeouts and dropped connections (exponential backoff, full jitter, Retry-After) [default: ${DEFAULT_MAX_RETRIES}]`,
  },
  'backend-concurrency': {
    type: 'number',
    describe: `--backend openai: requests in flight at once, over all replicas (--concurrency is the sandbox's) [default: ${DEFAULT_BACKEND_CONCURRENCY} per --base-url]`,
  },
} as const;

/** The part of the run config that decides results: hashed into the run's identity. */
export interface OpenAiConfig {
  base_url: string;
  /** Present (true) only with --chat, so completions runs keep one hash. */
  chat?: true;
  /** --tokenizer as given for presets, as an absolute path otherwise. */
  tokenizer?: string;
}

/** How the backend talks to the server: never hashed, never written to the run directory. */
export interface OpenAiSettings {
  apiKeyEnv: string;
  requestTimeoutS: number;
  maxRetries: number;
  concurrency: number;
  /** Every --base-url, the first (config.base_url) included, when several were given: replicas of one model. */
  replicas?: string[];
}

/** Every --base-url (repeated flags and comma lists), normalized, each once, in the order given. */
export function baseUrlsFrom(flags: Flags): string[] {
  const given = (flagStrings(flags, 'base-url') ?? []).flatMap((value) => value.split(',')).filter((value) => value.trim() !== '');
  if (given.length === 0) {
    throw new UsageError('--backend openai needs --base-url: the server to evaluate', {
      hint: 'e.g. --base-url http://127.0.0.1:8000/v1 (vLLM, SGLang, TGI, llama.cpp server) or --base-url https://api.openai.com/v1',
    });
  }
  return [...new Set(given.map(normalizeBaseUrl))];
}

export function openAiConfigFrom(flags: Flags): OpenAiConfig {
  const config: OpenAiConfig = { base_url: baseUrlsFrom(flags)[0]! };
  if (flagBoolean(flags, 'chat')) config.chat = true;
  const tokenizer = flagString(flags, 'tokenizer');
  if (tokenizer !== undefined) {
    if (tokenizer.trim() === '')
      throw new UsageError('--tokenizer is empty', { hint: 'give a tokenizer.json path, its model directory or preset:tiny-starcoder2' });
    config.tokenizer = tokenizer.startsWith('preset:') ? tokenizer : resolve(tokenizer);
  }
  return config;
}

export function openAiSettingsFrom(flags: Flags): OpenAiSettings {
  const apiKeyEnv = flagString(flags, 'api-key-env') ?? DEFAULT_API_KEY_ENV;
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(apiKeyEnv)) {
    throw new UsageError(`--api-key-env must name an environment variable, got "${apiKeyEnv}"`, {
      hint: `e.g. --api-key-env ${DEFAULT_API_KEY_ENV} (the name of the variable, not the key itself)`,
    });
  }
  const replicas = flags['base-url'] === undefined ? [] : baseUrlsFrom(flags);
  return {
    ...(replicas.length > 1 ? { replicas } : {}),
    apiKeyEnv,
    requestTimeoutS: positiveNumber(flagNumber(flags, 'request-timeout') ?? DEFAULT_REQUEST_TIMEOUT_S, '--request-timeout'),
    maxRetries: nonNegativeInt(flagNumber(flags, 'max-retries') ?? DEFAULT_MAX_RETRIES, '--max-retries'),
    concurrency: positiveInt(flagNumber(flags, 'backend-concurrency') ?? DEFAULT_BACKEND_CONCURRENCY * Math.max(1, replicas.length), '--backend-concurrency'),
  };
}

/**
 * The base URL as the run records it: http(s), no credentials (the key goes in --api-key-env's variable, never in
 * the URL, which is part of the run's identity and its manifest), no query or fragment, no trailing slash.
 */
export function normalizeBaseUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text.trim());
  } catch {
    throw new UsageError(`--base-url is not a URL: ${text}`, { hint: 'e.g. --base-url http://127.0.0.1:8000/v1' });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError(`--base-url must be http or https, got ${url.protocol.replace(/:$/, '')}`, { hint: 'e.g. --base-url http://127.0.0.1:8000/v1' });
  }
  if (url.username !== '' || url.password !== '') {
    url.username = '';
    url.password = '';
    throw new UsageError(`--base-url must not carry credentials (${url.origin}${url.pathname})`, {
      hint: `put the API key in an environment variable and name it with --api-key-env (default ${DEFAULT_API_KEY_ENV}); the base URL is recorded with the run`,
    });
  }
  if (url.search !== '' || url.hash !== '') {
    throw new UsageError(`--base-url must not have a query or fragment (${url.origin}${url.pathname})`, {
      hint: 'give the API root only, e.g. http://127.0.0.1:8000/v1; the base URL is recorded with the run',
    });
  }
  return `${url.origin}${url.pathname}`.replace(/\/+$/, '');
}

/** True for a host on this machine (plain http is fine there: nothing travels over a network). */
export function isLoopbackUrl(baseUrl: string): boolean {
  const host = new URL(baseUrl).hostname.replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}
