import type { RequestRunner } from './request-runner.js';
import { RequestRefused } from './request-runner.js';
import type { ServerConnection } from './server-connection.js';

/** Texts to token ids, without special tokens (as the engine's score op tokenizes). */
export interface TextTokenizer {
  readonly kind: 'server' | 'local';
  encode(texts: readonly string[], signal?: AbortSignal): Promise<number[][]>;
  close(): Promise<void>;
}

/** vLLM's /tokenize reply (SGLang's has the same fields). */
interface TokenizeReply {
  tokens?: unknown;
  count?: unknown;
  max_model_len?: unknown;
}

function isIdList(value: unknown): value is number[] {
  return Array.isArray(value) && value.every((id) => Number.isInteger(id) && id >= 0);
}

/**
 * The server's own tokenizer: POST {model, prompt, add_special_tokens} to its /tokenize (vLLM's shape; served at
 * the root, beside /v1), one text per request, through the runner (retries, concurrency).
 */
export class ServerTokenizer implements TextTokenizer {
  readonly kind = 'server' as const;

  constructor(
    private readonly connection: ServerConnection,
    private readonly runner: RequestRunner,
    private readonly model: string,
    readonly url: string,
  ) {}

  /** Find the server's /tokenize (at the root, then under the base URL); undefined when it has none. */
  static async probe(
    connection: ServerConnection,
    runner: RequestRunner,
    model: string,
    signal?: AbortSignal,
  ): Promise<{ tokenizer: ServerTokenizer; maxModelLen: number | undefined } | undefined> {
    const urls = [...new Set([`${connection.rootUrl}/tokenize`, `${connection.baseUrl}/tokenize`])];
    for (const url of urls) {
      const tokenizer = new ServerTokenizer(connection, runner, model, url);
      try {
        const reply = await tokenizer.request('def f():', false, signal);
        if (!isIdList(reply.tokens)) continue;
        const maxModelLen = Number.isInteger(reply.max_model_len) ? (reply.max_model_len as number) : undefined;
        return { tokenizer, maxModelLen };
      } catch (error) {
        if (error instanceof RequestRefused) continue; // 404, 405, 400: no tokenizer there
        throw error;
      }
    }
    return undefined;
  }

  async encode(texts: readonly string[], signal?: AbortSignal): Promise<number[][]> {
    return Promise.all(
      texts.map(async (text) => {
        const reply = await this.request(text, false, signal);
        if (!isIdList(reply.tokens)) throw new Error(`${this.url} answered without a token list`);
        return reply.tokens;
      }),
    );
  }

  /** The ids of `text`, with or without the special tokens the server's tokenizer adds. */
  async ids(text: string, addSpecialTokens: boolean, signal?: AbortSignal): Promise<number[] | undefined> {
    const reply = await this.request(text, addSpecialTokens, signal);
    return isIdList(reply.tokens) ? reply.tokens : undefined;
  }

  async close(): Promise<void> {}

  private request(text: string, addSpecialTokens: boolean, signal?: AbortSignal): Promise<TokenizeReply> {
    return this.runner.run(
      'tokenize',
      (attempt) =>
        this.connection.client.post<TokenizeReply>(this.url, {
          body: { model: this.model, prompt: text, add_special_tokens: addSpecialTokens },
          signal: attempt.signal,
          maxRetries: 0,
        }),
      { signal },
    );
  }
}

/**
 * The model's BOS id as the server shows it: the `bos_token` of its GET /tokenizer_info (vLLM's, and our engine's
 * server's; the string tokenized back to its one id), else the token its tokenizer puts in front with
 * add_special_tokens (Llama, Mistral, DeepSeek-Coder), else `<|endoftext|>` when it is one token (StarCoder2,
 * GPT-2, Qwen: there it is the BOS, or the EOS that lm-evaluation-harness takes as the prefix).
 */
export async function serverBosToken(
  connection: ServerConnection,
  runner: RequestRunner,
  tokenizer: ServerTokenizer,
  signal?: AbortSignal,
): Promise<{ id: number; source: 'server-tokenizer-info' | 'server-special-tokens' | 'server-endoftext' } | undefined> {
  const named = await tokenizerInfoBos(connection, runner, signal);
  if (named !== undefined) {
    const ids = await tokenizer.ids(named, false, signal);
    if (ids?.length === 1) return { id: ids[0]!, source: 'server-tokenizer-info' };
  }
  const plain = await tokenizer.ids('def', false, signal);
  const special = await tokenizer.ids('def', true, signal);
  if (plain && special && special.length === plain.length + 1 && plain.every((id, i) => special[i + 1] === id)) {
    return { id: special[0]!, source: 'server-special-tokens' };
  }
  const endOfText = await tokenizer.ids('<|endoftext|>', false, signal);
  if (endOfText?.length === 1) return { id: endOfText[0]!, source: 'server-endoftext' };
  return undefined;
}

/** GET /tokenizer_info's bos_token (a string, or {content}); undefined where the server has no such endpoint. */
async function tokenizerInfoBos(connection: ServerConnection, runner: RequestRunner, signal?: AbortSignal): Promise<string | undefined> {
  try {
    const info = await runner.run(
      'tokenizer_info',
      (attempt) => connection.client.get<{ bos_token?: unknown }>(`${connection.rootUrl}/tokenizer_info`, { signal: attempt.signal, maxRetries: 0 }),
      { signal },
    );
    const token = typeof info.bos_token === 'object' && info.bos_token !== null ? (info.bos_token as { content?: unknown }).content : info.bos_token;
    return typeof token === 'string' && token !== '' ? token : undefined;
  } catch (error) {
    if (error instanceof RequestRefused) return undefined;
    throw error;
  }
}
