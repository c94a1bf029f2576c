/**
 * What a run records about a model served by another program (--backend openai): where it is served and what the
 * server says about itself. Never a credential: the base URL is refused when it carries one, and every value
 * recorded from the server passes the backend's redactor (redact.ts) first.
 */
export interface RemoteServerFacts {
  /** The base URL the run talks to (part of the run's identity), without credentials, query or trailing slash. */
  base_url: string;
  /** Response headers that name the server's software or version (`server`, `x-*-version`, ...), lowercased names. */
  software: Record<string, string>;
}

/** One entry of the server's GET /v1/models, the fields that say what is served. */
export interface ServedModel {
  id: string;
  owned_by?: string;
  /** vLLM and SGLang report the model's context length here. */
  max_model_len?: number;
  /** vLLM: the checkpoint the served name points to. */
  root?: string;
}

/** LoadResult.remote: the model as the server serves it, and how this run talks to it. */
export interface RemoteModelFacts extends RemoteServerFacts {
  /** completions (/v1/completions) or chat (/v1/chat/completions, --chat). */
  api: 'completions' | 'chat';
  /** Every model the server listed at load (GET /v1/models). */
  served_models: ServedModel[];
  /** How texts are tokenized for perplexity windows: the server's /tokenize, a local --tokenizer, or neither. */
  tokenizer: 'server' | 'local' | null;
  /** How the BOS id (bos_token_id) was learned, or null when it was not. */
  bos_source: 'tokenizer' | 'server-tokenizer-info' | 'server-special-tokens' | 'server-endoftext' | null;
  /** Every --base-url when several replicas served the run (base_url first); requests went to the least loaded. */
  replicas?: string[];
}
