import type { ScoredRow } from '../../backends/engine/protocol.js';
import { recordKind } from '../../pipeline/store/record-kind.js';

/**
 * One scored row of the perplexity texts: the engine's row as it answered (records/perplexity.jsonl), and the
 * row's word count as lm-evaluation-harness counts it (`n_words`; absent in records written before it existed).
 */
export type PerplexityRecord = ScoredRow & {
  key: string;
  n_words?: number;
  /** The engine's message when it could not score the row even alone: the counts are 0 and no figure uses it. */
  error?: string;
};

export const PERPLEXITY_RECORDS = recordKind<PerplexityRecord>('perplexity', {
  index: 'integer',
  nll_sum: 'number',
  n_scored_tokens: 'integer',
  n_bytes: 'integer',
});

export function rowKey(index: number): string {
  return `row:${index}`;
}

/**
 * Python's `\s` on str (what `str.isspace()` accepts): the ASCII whitespace, the information separators
 * U+001C..U+001F, U+0085, and Unicode's space separators and line/paragraph separators. JavaScript's `\s` differs
 * (it lacks U+001C..U+001F and U+0085 and has U+FEFF), so the class is spelled out.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: Python's \s matches U+001C..U+001F, so must this
const PYTHON_WHITESPACE = /[\t\n\v\f\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/u;

/**
 * A text's word count as lm-evaluation-harness defines it for word perplexity: `len(re.split(r"\s+", doc))`, so
 * leading or trailing whitespace adds an empty word each and the empty text has one.
 */
export function countWords(text: string): number {
  return text.split(PYTHON_WHITESPACE).length;
}
