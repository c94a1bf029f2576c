/**
 * The score op's window plans in TypeScript, equal to cuda/evalpipe_engine/scoring.py's `plan_windows` and
 * `plan_lm_eval_windows` (windows.test.ts checks the two against each other through the project's Python), so a
 * remote model is scored over exactly the windows our engine would use. Rules: docs/engine-protocol.md#score.
 */

/** One window over a sequence: its tokens are seq[begin:end]; it scores positions firstScored..end-1. */
export interface Window {
  begin: number;
  end: number;
  firstScored: number;
}

/**
 * Our windows ("evalpipe") for a sequence of n tokens (BOS included when there is one): at most maxLength tokens
 * each, advancing by stride but never past the last token scored, each scoring the positions after the previous
 * window's end. Empty when there is nothing to score (n < 2).
 */
export function planWindows(n: number, maxLength: number, stride: number): Window[] {
  if (n < 2) return [];
  const out: Window[] = [];
  let begin = 0;
  let scoredTo = 1; // positions < scoredTo are done (position 0 is context only)
  for (;;) {
    const end = Math.min(begin + maxLength, n);
    out.push({ begin, end, firstScored: scoredTo });
    scoredTo = end;
    if (end === n) return out;
    begin = Math.min(begin + stride, end - 1);
  }
}

/**
 * lm-evaluation-harness's rolling windows for a text of nText tokens in the sequence [prefix] + text: the model
 * runs on seq[begin:end-1] (the last id of a window is a target only) and the window scores firstScored..end-1.
 */
export function planLmEvalWindows(nText: number, maxLength: number): Window[] {
  if (nText < 1) return [];
  const first = Math.min(maxLength, nText);
  const out: Window[] = [{ begin: 0, end: first + 1, firstScored: 1 }];
  let predicted = first; // text tokens scored so far; text token i is sequence position i + 1
  while (predicted < nText) {
    const count = Math.min(nText - predicted, maxLength);
    const endText = predicted + count;
    out.push({ begin: endText - maxLength, end: endText + 1, firstScored: predicted + 1 });
    predicted = endText;
  }
  return out;
}
