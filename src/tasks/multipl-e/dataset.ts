import { loadDatasetRows, type DatasetProvenance, type LoadOptions } from '../../datasets/load.js';
import { DataError } from '../../util/errors.js';
import type { MultiplELanguage } from './config.js';

/** One MultiPL-E problem, in the data set's field names (nuprl/MultiPL-E, configs humaneval-js / humaneval-ts). */
export interface MultiplEProblem {
  name: string;
  language: string;
  prompt: string;
  doctests: string;
  original: string;
  prompt_terminology: string;
  tests: string;
  stop_tokens: string[];
}

export interface MultiplESet {
  problems: MultiplEProblem[];
  provenance: DatasetProvenance;
}

export const MULTIPL_E_HUB_ID = 'nuprl/MultiPL-E';

const HINT = 'each row needs string fields name, language, prompt, tests and a stop_tokens list (nuprl/MultiPL-E humaneval-js / humaneval-ts)';

/** Check one row; `where` names it in errors. */
export function parseMultiplERow(value: unknown, where: string): MultiplEProblem {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new DataError(`${where} is not an object`, { hint: HINT });
  const row = value as Record<string, unknown>;
  for (const field of ['name', 'language', 'prompt', 'tests'] as const) {
    if (typeof row[field] !== 'string') throw new DataError(`${where}: "${field}" is missing or not a string`, { hint: HINT });
  }
  const stop = row.stop_tokens;
  if (!Array.isArray(stop) || !stop.every((token) => typeof token === 'string')) {
    throw new DataError(`${where}: "stop_tokens" is missing or not a list of strings`, { hint: HINT });
  }
  const text = (field: string) => (typeof row[field] === 'string' ? (row[field] as string) : '');
  if ((row.name as string).trim() === '') throw new DataError(`${where}: "name" is empty`, { hint: HINT });
  return {
    name: row.name as string,
    language: row.language as string,
    prompt: row.prompt as string,
    doctests: text('doctests'),
    original: text('original'),
    prompt_terminology: text('prompt_terminology'),
    tests: row.tests as string,
    stop_tokens: stop as string[],
  };
}

/**
 * The problems of humaneval-<language>: a local .jsonl/.parquet file with the data set's fields, or (no source)
 * the hub data set nuprl/MultiPL-E, config humaneval-<language>, split test. Rows of another language, and
 * repeated names, are refused.
 */
export async function loadMultiplE(
  language: MultiplELanguage,
  source?: string,
  options: Omit<LoadOptions, 'rows' | 'split' | 'config'> = {},
): Promise<MultiplESet> {
  const id = source ?? MULTIPL_E_HUB_ID;
  const loaded = await loadDatasetRows(id, { ...options, split: 'test', config: `humaneval-${language}`, rows: 100_000 });
  const problems = loaded.rows.map((row, index) => parseMultiplERow(row, `${id} row ${index}`));
  if (problems.length === 0) throw new DataError(`${id} holds no MultiPL-E problems`, { hint: HINT });
  const seen = new Set<string>();
  problems.forEach((problem, index) => {
    if (problem.language !== language) {
      throw new DataError(`${id} row ${index} (${problem.name}) is language "${problem.language}", not "${language}"`, {
        hint: `pass the humaneval-${language} rows to --multipl-e-${language}`,
      });
    }
    if (seen.has(problem.name)) throw new DataError(`${id} row ${index} repeats name "${problem.name}"`, { hint: 'each problem must appear once' });
    seen.add(problem.name);
  });
  return { problems, provenance: loaded.provenance };
}

/** The program MultiPL-E runs for a completion: prompt + completion + "\n" + tests. */
export function multiplEProgram(problem: Pick<MultiplEProblem, 'prompt' | 'tests'>, completion: string, prompt: string = problem.prompt): string {
  return `${prompt}${completion}\n${problem.tests}`;
}
