import { describe, expect, it } from 'vitest';
import { UsageError } from '../../util/errors.js';
import { perplexityConfigFrom } from './config.js';
import { countWords, type PerplexityRecord } from './records.js';
import { perplexityResults } from './results.js';

const provenance = { id: 'builtin:smoke', source: 'builtin', contentSha256: 'a'.repeat(64), rowCount: 3, textField: 'text' } as never;

function record(index: number, nll: number, tokens: number, bytes: number, words?: number): PerplexityRecord {
  return {
    key: `row:${index}`,
    index,
    nll_sum: nll,
    n_scored_tokens: tokens,
    n_tokens: tokens,
    n_bytes: bytes,
    n_windows: 1,
    ...(words === undefined ? {} : { n_words: words }),
  };
}

describe('countWords: lm-eval\'s len(re.split(r"\\s+", text))', () => {
  it.each([
    ['', 1],
    ['x', 1],
    ['a b', 2],
    ['  a b  ', 4], // a leading and a trailing empty word, as Python's re.split gives
    ['def f(x):\n    return x\n', 5],
    ['a\tb\x0bc\x0cd\re', 5],
    // Python's \s also matches the information separators and NEL; JavaScript's \s does not (and has U+FEFF).
    ['a\x1cb\x1dc\x1ed\x1fe\x85f', 6],
    ['a\ufeffb', 1],
    ['a\u00a0b\u2003c\u3000d\u2028e', 5],
  ])('%j has %i words', (text, words) => {
    expect(countWords(text)).toBe(words);
  });
});

describe('perplexity results: byte and word perplexity as lm-eval defines them', () => {
  const rows = [record(0, 30, 10, 40, 8), record(1, 12.5, 5, 20, 3), record(2, 50, 20, 90, 15)];

  it('are exp(Σ NLL / Σ bytes) and exp(Σ NLL / Σ words), with delta-method standard errors', () => {
    const section = perplexityResults(rows, provenance, 'lm-eval');
    expect(section.windowing).toBe('lm-eval');
    expect(section.byte_perplexity).toBeCloseTo(Math.exp(92.5 / 150), 12);
    expect(section.word_perplexity).toBeCloseTo(Math.exp(92.5 / 26), 12);
    expect(section.words).toBe(26);
    expect(section.estimates.byte_perplexity).toMatchObject({ value: section.byte_perplexity, n: 3 });
    expect(section.estimates.word_perplexity).toMatchObject({ value: section.word_perplexity, n: 3 });
    // delta method: exp(r) · sqrt(Σ (a_i − r b_i)² / ((n − 1) n b̄²)) with r = Σa/Σb
    const r = 92.5 / 26;
    const meanB = 26 / 3;
    const se = Math.sqrt(((30 - r * 8) ** 2 + (12.5 - r * 3) ** 2 + (50 - r * 15) ** 2) / (2 * 3 * meanB * meanB));
    expect(section.estimates.word_perplexity.se).toBeCloseTo(Math.exp(r) * se, 10);
  });

  it('are bit-identical in any record order (exact sums)', () => {
    const a = perplexityResults(rows, provenance);
    const b = perplexityResults([rows[2]!, rows[0]!, rows[1]!], provenance);
    expect(JSON.stringify(b)).toBe(JSON.stringify(a));
    expect(a.windowing).toBe('evalpipe');
  });

  it('word perplexity is null when a record predates the word count', () => {
    const section = perplexityResults([rows[0]!, record(1, 12.5, 5, 20)], provenance);
    expect(section.word_perplexity).toBeNull();
    expect(section.words).toBeNull();
    expect(section.estimates.word_perplexity).toEqual({ value: null, se: null, n: 2 });
    expect(section.byte_perplexity).toBeCloseTo(Math.exp(42.5 / 60), 12);
  });
});

describe('--windowing', () => {
  it('is left out of the config by default and for evalpipe (run ids stay); lm-eval is recorded', () => {
    expect('windowing' in perplexityConfigFrom({})).toBe(false);
    expect(perplexityConfigFrom({ windowing: 'evalpipe' }).windowing).toBeUndefined();
    expect(perplexityConfigFrom({ windowing: 'lm-eval' }).windowing).toBe('lm-eval');
  });

  it.each([
    [{ windowing: 'harness' }, /unknown --windowing "harness"/],
    [{ windowing: 'lm-eval', stride: 8 }, /--stride does not apply to --windowing lm-eval/],
    [{ windowing: 'lm-eval', bos: false }, /--no-bos does not apply to --windowing lm-eval/],
  ])('refuses %j', (flags, message) => {
    expect(() => perplexityConfigFrom(flags)).toThrow(UsageError);
    expect(() => perplexityConfigFrom(flags)).toThrow(message);
  });
});
