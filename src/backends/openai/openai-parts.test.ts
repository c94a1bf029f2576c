import { APIConnectionError, APIError } from 'openai';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../util/errors.js';
import { completionFromReply, entryPointOf, extractCode } from './chat-prompt.js';
import { normalizeBaseUrl, openAiConfigFrom, openAiSettingsFrom } from './openai-options.js';
import { REDACTED, Redactor } from './redact.js';
import { AttemptTimeout, backoffMs, classifyFailure, retryAfter } from './retry-policy.js';
import { contextRefusal, ServerQuirks } from './server-quirks.js';
import { cutAtStop } from './stop-strings.js';

const headers = (values: Record<string, string>): Headers => new Headers(values);

describe('retry policy', () => {
  it('reads Retry-After as seconds, as an HTTP date, and retry-after-ms', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(retryAfter(headers({ 'retry-after': '3' }), now)).toBe(3000);
    expect(retryAfter(headers({ 'retry-after': '0.5' }), now)).toBe(500);
    expect(retryAfter(headers({ 'retry-after': 'Thu, 01 Jan 2026 00:00:07 GMT' }), now)).toBe(7000);
    expect(retryAfter(headers({ 'retry-after': 'Wed, 31 Dec 2025 23:59:00 GMT' }), now)).toBe(0);
    expect(retryAfter(headers({ 'retry-after-ms': '250', 'retry-after': '9' }), now)).toBe(250);
    expect(retryAfter(headers({ 'retry-after': 'soon' }), now)).toBeUndefined();
    expect(retryAfter(headers({}), now)).toBeUndefined();
  });

  it('backs off exponentially with full jitter, never sooner than the server asked (capped)', () => {
    const options = { baseMs: 500, capMs: 30_000, maxRetryAfterMs: 60_000 };
    expect(backoffMs(0, { ...options, random: () => 0.999999 })).toBeLessThan(500);
    expect(backoffMs(3, { ...options, random: () => 0.5 })).toBe(2000);
    expect(backoffMs(20, { ...options, random: () => 0.5 })).toBe(15_000);
    expect(backoffMs(0, { ...options, random: () => 0 })).toBe(0);
    expect(backoffMs(0, { ...options, random: () => 0 }, 4000)).toBe(4000);
    expect(backoffMs(0, { ...options, random: () => 0 }, 3_600_000)).toBe(60_000);
  });

  it('retries 429, 5xx, 408, timeouts, dropped connections and unreadable replies; not other 4xx', () => {
    const status = (code: number, body?: string) => classifyFailure(APIError.generate(code, undefined, undefined, headers({})), body);
    expect(status(429)).toMatchObject({ kind: 'rate_limited', retryable: true });
    expect(status(503)).toMatchObject({ kind: 'server_error', retryable: true });
    expect(status(408)).toMatchObject({ retryable: true });
    expect(status(400, '{"object":"error","message":"n must be at most 4"}')).toMatchObject({
      kind: 'refused',
      retryable: false,
      message: '400 n must be at most 4',
    });
    expect(status(401, '{"error":{"message":"bad key"}}')).toMatchObject({ retryable: false, message: '401 bad key' });
    expect(classifyFailure(new APIConnectionError({ cause: Object.assign(new Error('x'), { code: 'ECONNRESET' }) }), undefined)).toMatchObject({
      kind: 'connection',
      message: 'connection failed (ECONNRESET)',
    });
    expect(classifyFailure(new AttemptTimeout(2000), undefined)).toMatchObject({ kind: 'timeout', message: 'no reply within 2 s' });
    expect(classifyFailure(new SyntaxError('Unexpected end of JSON input'), undefined)).toMatchObject({ kind: 'malformed', retryable: true });
  });
});

describe('server quirks', () => {
  const refusal = (message: string) => ({ kind: 'refused' as const, retryable: false, status: 400, message: `400 ${message}` });
  const sent = { n: 8, stops: 8, seed: true, streamUsage: true };

  it('learn a cap on n, fewer stop strings, no seed, no stream_options from refusals', () => {
    const quirks = new ServerQuirks();
    expect(quirks.adaptGenerate(refusal('n must be at most 4, got 8'), sent)).toBe(true);
    expect(quirks.maxN).toBe(4);
    expect(quirks.adaptGenerate(refusal('Only one completion choice is allowed'), { ...sent, n: 4 })).toBe(true);
    expect(quirks.maxN).toBe(2);
    expect(quirks.adaptGenerate(refusal("'stop' may hold at most 4 sequences"), sent)).toBe(true);
    expect(quirks.stopLimit).toBe(4);
    expect(quirks.adaptGenerate(refusal('stop is not supported'), { ...sent, stops: 4 })).toBe(true);
    expect(quirks.stopLimit).toBe(0);
    expect(quirks.adaptGenerate(refusal('unknown field stream_options'), sent)).toBe(true);
    expect(quirks.streamUsage).toBe(false);
    expect(quirks.adaptGenerate(refusal('seed is not supported'), sent)).toBe(true);
    expect(quirks.sendSeed).toBe(false);
    expect(quirks.adaptGenerate(refusal('temperature must be >= 0'), sent)).toBe(false);
    expect(quirks.adaptGenerate(refusal('n must be 1'), { ...sent, n: 1 })).toBe(false);
  });

  it('reads the room left from a context-length refusal (vLLM and OpenAI wordings)', () => {
    expect(
      contextRefusal(
        refusal("This model's maximum context length is 2048 tokens. However, you requested 2100 tokens (1600 in the prompt, 500 in the completion)"),
      ),
    ).toEqual({ room: 448 });
    expect(
      contextRefusal(refusal("'max_tokens' is too large: 512. This model's maximum context length is 512 tokens and your request has 100 input tokens")),
    ).toEqual({
      room: 412,
    });
    expect(contextRefusal(refusal('prompt is too long'))).toEqual({ room: undefined });
    expect(contextRefusal(refusal('n must be at most 4'))).toBeUndefined();
  });
});

describe('stop strings (as generation.py _find_stop)', () => {
  it('cut at the earliest occurrence; at a tie the first in the list', () => {
    expect(cutAtStop('    return 1\ndef g():\n#x', ['\n#', '\ndef'])).toEqual({ text: '    return 1', stop: '\ndef' });
    expect(cutAtStop('a\nif b', ['\nif', '\ni'])).toEqual({ text: 'a', stop: '\nif' });
    expect(cutAtStop('abc', [])).toEqual({ text: 'abc', stop: null });
  });
});

describe('--chat: the reply as a completion of the prompt', () => {
  const prompt = 'from typing import List\n\n\ndef has_close(numbers: List[float],\n              threshold: float) -> bool:\n    """Check."""\n';

  it('takes the first python block, else the first fenced block, else the whole reply', () => {
    expect(extractCode('Here:\n```text\nnot this\n```\n```python\nx = 1\n```\n')).toBe('x = 1\n');
    expect(extractCode('```\ny = 2\n```')).toBe('y = 2\n');
    expect(extractCode('```python\nz = 3\n')).toBe('z = 3\n'); // a block the length limit cut
    expect(extractCode('just code')).toBe('just code');
    expect(entryPointOf('def helper():\n    pass\n\n\ndef target(x):\n    """d"""\n')).toBe('target');
  });

  it('keeps the body after the signature (re-indented to four spaces) and the helpers, drops top-level statements', () => {
    const reply = [
      'Sure! Here is the solution:',
      '```python',
      'import math',
      '',
      'def has_close(numbers: List[float],',
      '              threshold: float) -> bool:',
      '  for i, a in enumerate(numbers):',
      '    for b in numbers[i + 1:]:',
      '      if math.fabs(a - b) < threshold:',
      '        return True',
      '  return False',
      '',
      'def unused_helper():',
      '  return 1',
      '',
      'print(has_close([1.0, 2.0], 0.5))',
      "if __name__ == '__main__':",
      '    pass',
      '```',
    ].join('\n');
    expect(completionFromReply(prompt, reply)).toBe(
      [
        '    for i, a in enumerate(numbers):',
        '      for b in numbers[i + 1:]:',
        '        if math.fabs(a - b) < threshold:',
        '          return True',
        '    return False',
        '',
        'import math',
        '',
        'def unused_helper():',
        '  return 1',
        '',
      ].join('\n'),
    );
  });

  it('a reply that is only a body is indented as one; a stripped prompt gets its newline', () => {
    expect(completionFromReply(prompt.trim(), '```python\nreturn False\n```')).toBe('\n    return False\n');
    expect(completionFromReply(prompt, '    return True')).toBe('    return True\n');
  });
});

describe('--backend openai flags', () => {
  it('normalizes the base URL and refuses credentials, queries and other schemes, without echoing a credential', () => {
    expect(normalizeBaseUrl('http://127.0.0.1:8000/v1/')).toBe('http://127.0.0.1:8000/v1');
    expect(normalizeBaseUrl(' https://api.openai.com/v1 ')).toBe('https://api.openai.com/v1');
    const credential = (() => {
      try {
        normalizeBaseUrl('https://user:hunter2secret@example.com/v1');
      } catch (error) {
        return error as UsageError;
      }
      return undefined;
    })();
    expect(credential).toBeInstanceOf(UsageError);
    expect(`${credential?.message} ${credential?.hint}`).not.toContain('hunter2secret');
    expect(() => normalizeBaseUrl('http://x/v1?api_key=abc')).toThrow(/must not have a query/);
    expect(() => normalizeBaseUrl('ftp://x/v1')).toThrow(/must be http or https/);
    expect(() => openAiConfigFrom({})).toThrow(/--backend openai needs --base-url/);
  });

  it('reads the config (hashed) apart from the settings (not hashed)', () => {
    expect(openAiConfigFrom({ 'base-url': 'http://h:1/v1', chat: true, tokenizer: 'preset:tiny-starcoder2' })).toEqual({
      base_url: 'http://h:1/v1',
      chat: true,
      tokenizer: 'preset:tiny-starcoder2',
    });
    expect(openAiConfigFrom({ 'base-url': 'http://h:1/v1', chat: false })).toEqual({ base_url: 'http://h:1/v1' });
    expect(openAiSettingsFrom({})).toEqual({ apiKeyEnv: 'OPENAI_API_KEY', requestTimeoutS: 300, maxRetries: 6, concurrency: 8 });
    expect(() => openAiSettingsFrom({ 'api-key-env': 'sk-abc' })).toThrow(/must name an environment variable/);
    expect(() => openAiSettingsFrom({ 'backend-concurrency': 0 })).toThrow(/--backend-concurrency/);
  });
});

describe('redactor', () => {
  it('removes the key, and its masked forms that keep its ends', () => {
    const redactor = new Redactor(['sk-proj-abcdefghijklmnop1234', undefined, 'ab']);
    expect(redactor.redact('key sk-proj-abcdefghijklmnop1234 refused')).toBe(`key ${REDACTED} refused`);
    expect(redactor.redact('Incorrect API key provided: sk-pro*************1234.')).toBe(`Incorrect API key provided: ${REDACTED}.`);
    expect(redactor.redact('about abc')).toBe('about abc');
  });
});
