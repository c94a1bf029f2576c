import { loadDatasetRows, type LoadOptions } from '../../datasets/load.js';
import { DataError } from '../../util/errors.js';
import { loadHumanEval, parseHumanEvalRow } from '../humaneval/dataset.js';
import type { PlusConfig } from '../evalplus/config.js';
import type { PlusProblem } from '../evalplus/program.js';
import type { PlusSet } from '../evalplus/task-factory.js';

export const HUMANEVAL_PLUS_HUB_ID = 'evalplus/humanevalplus';

/**
 * HumanEval+ problems: evalplus/humanevalplus (split test: task_id, prompt, canonical_solution, entry_point, test),
 * or a local .jsonl/.parquet in that format. The hub's `test` runs every input (the original ones and evalplus's
 * added ones, `check(candidate)` with its inputs and expected results): that is the plus suite, so a pass there is
 * evalplus's "base + extra" pass. The base suite is the original HumanEval `test` of the same task_id
 * (openai/openai_humaneval, or --humaneval), the tests evalplus's base inputs were taken from.
 */
export async function loadHumanEvalPlus(
  config: Pick<PlusConfig, 'source' | 'baseSource'>,
  options: Omit<LoadOptions, 'rows' | 'split' | 'config'> = {},
): Promise<PlusSet> {
  const source = config.source ?? HUMANEVAL_PLUS_HUB_ID;
  const loaded = await loadDatasetRows(source, { ...options, split: 'test', config: 'default', rows: 100_000 });
  const plus = loaded.rows.map((row, index) => parseHumanEvalRow(row, `${source} row ${index}`));
  if (plus.length === 0) throw new DataError(`${source} holds no HumanEval+ problems`, { hint: 'pass --humaneval-plus PATH to a HumanEval+ .jsonl' });
  const base = await loadHumanEval(config.baseSource, { ...options });
  const baseById = new Map(base.problems.map((problem) => [problem.task_id, problem]));
  const problems: PlusProblem[] = plus.map((problem) => {
    const original = baseById.get(problem.task_id);
    if (!original) {
      throw new DataError(`HumanEval+ problem ${problem.task_id} has no HumanEval problem of the same task_id for its base tests`, {
        hint: 'pass --humaneval with the HumanEval set that HumanEval+ extends',
      });
    }
    return {
      task_id: problem.task_id,
      prompt: problem.prompt,
      entry_point: problem.entry_point,
      canonical_solution: problem.canonical_solution,
      base: { source: original.test, call: `check(${problem.entry_point})` },
      plus: { source: problem.test, call: `check(${problem.entry_point})` },
    };
  });
  return { problems, provenance: { 'humaneval-plus': loaded.provenance, 'humaneval-plus-base': base.provenance } };
}
