import type { Failure } from './retry-policy.js';

/**
 * What this server turned out not to take, learned from its refusals and remembered for the rest of the run, so
 * each refusal costs one request: a cap on `n`, `max_tokens: 0` with echo (then 1, the smallest accepted), more
 * than a few stop strings (OpenAI takes four), `stream_options`, `seed`.
 */
export class ServerQuirks {
  /** The most samples one request may ask for; undefined: no cap seen. */
  maxN: number | undefined;
  /** max_tokens of a scoring (echo) request: 0 until the server refuses it, then 1. */
  scoreMaxTokens: 0 | 1 = 0;
  /** How many stop strings to send; undefined: all (they are applied on our side too, always). */
  stopLimit: number | undefined;
  /** Ask for `usage` in streams (the exact token count of a one-sample request). */
  streamUsage = true;
  sendSeed = true;

  /**
   * A refusal of a generate request that names a parameter we can do without: adjust and return true (send again),
   * or false (the refusal stands). `sent` is what the refused request carried (requests run concurrently: another
   * one may have learned the same already, which still means: send again).
   */
  adaptGenerate(failure: Failure, sent: { n: number; stops: number; seed: boolean; streamUsage: boolean }): boolean {
    if (!isParameterRefusal(failure)) return false;
    const text = failure.body ?? failure.message;
    if (/stream_options|include_usage/i.test(text) && sent.streamUsage) {
      this.streamUsage = false;
      return true;
    }
    if (/\bseed\b/i.test(text) && sent.seed) {
      this.sendSeed = false;
      return true;
    }
    if (/\bstop\b/i.test(text) && sent.stops > 0) {
      const fewer = sent.stops > 4 ? 4 : 0;
      this.stopLimit = Math.min(this.stopLimit ?? fewer, fewer);
      return true;
    }
    if (sent.n > 1 && /\bn\b|\bchoices?\b|best_of/i.test(text)) {
      const stated = /\b(?:at most|maximum(?: of)?|<=|less than or equal to|up to|max(?:imum)?:?)\s*(\d+)/i.exec(text);
      const cap = stated ? Number(stated[1]) : Math.floor(sent.n / 2);
      const next = Math.max(1, Math.min(cap, sent.n - 1));
      this.maxN = Math.min(this.maxN ?? next, next);
      return true;
    }
    return false;
  }

  /** The server returned fewer samples than asked (and no error): it caps n at what it returned. */
  cappedAt(returned: number): void {
    if (returned >= 1) this.maxN = Math.min(this.maxN ?? returned, returned);
  }

  /** A refusal of a scoring request sent with max_tokens 0: use 1 from now on (and send this one again). */
  adaptScore(failure: Failure, sentMaxTokens: number): boolean {
    if (!isParameterRefusal(failure) || sentMaxTokens !== 0) return false;
    this.scoreMaxTokens = 1;
    return true;
  }
}

/** A 400 or 422: the server read the request and refused a value in it. */
export function isParameterRefusal(failure: Failure): boolean {
  return failure.status === 400 || failure.status === 422;
}

/**
 * A refusal because prompt + max_tokens is more than the model's context. The room left for new tokens when the
 * server says how many positions the model has and how many the prompt takes (vLLM, SGLang and OpenAI word it so).
 */
export function contextRefusal(failure: Failure): { room: number | undefined } | undefined {
  if (!isParameterRefusal(failure)) return undefined;
  const text = failure.body ?? failure.message;
  if (!/context length|context window|too long|max_model_len|maximum context/i.test(text)) return undefined;
  const context = /maximum context length is (\d+)/i.exec(text) ?? /max_model_len[^\d]{0,20}(\d+)/i.exec(text);
  const prompt =
    /(\d+) (?:tokens )?in the (?:messages|prompt)/i.exec(text) ?? /has (\d+) input tokens/i.exec(text) ?? /prompt[^\d]{0,30}(\d+) tokens/i.exec(text);
  return { room: context && prompt ? Number(context[1]) - Number(prompt[1]) : undefined };
}
