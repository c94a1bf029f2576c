import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { IsolatedProgram } from '../../sandbox/sandbox-container.js';
import { DataError, UsageError } from '../../util/errors.js';
import { loadDatasetRows, type DatasetProvenance, type LoadOptions } from '../../datasets/load.js';

/** One HumanEval problem, in the original data set's field names. */
export interface HumanEvalProblem {
  task_id: string;
  prompt: string;
  entry_point: string;
  canonical_solution: string;
  test: string;
}

export interface HumanEvalSet {
  problems: HumanEvalProblem[];
  /** Where the problems came from: a local file (path + sha256) or the hub (repo + revision). */
  provenance: DatasetProvenance;
}

export const HUMANEVAL_HUB_ID = 'openai/openai_humaneval';
export const HUMANEVAL_FIELDS = ['task_id', 'prompt', 'entry_point', 'canonical_solution', 'test'] as const;

const FORMAT_HINT =
  'each line must be a JSON object with string fields task_id, prompt, entry_point, canonical_solution and test (the openai/human-eval HumanEval.jsonl format)';

/** Check one row; `where` names it in errors ("HumanEval.jsonl.gz line 7"). */
export function parseHumanEvalRow(value: unknown, where: string): HumanEvalProblem {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new DataError(`${where} is not a JSON object`, { hint: FORMAT_HINT });
  }
  const row = value as Record<string, unknown>;
  for (const field of HUMANEVAL_FIELDS) {
    if (!(field in row)) throw new DataError(`${where} has no "${field}" field`, { hint: FORMAT_HINT });
    if (typeof row[field] !== 'string') throw new DataError(`${where}: "${field}" is not a string`, { hint: FORMAT_HINT });
  }
  const problem = Object.fromEntries(HUMANEVAL_FIELDS.map((field) => [field, row[field] as string])) as unknown as HumanEvalProblem;
  if (problem.task_id.trim() === '') throw new DataError(`${where}: "task_id" is empty`, { hint: FORMAT_HINT });
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(problem.entry_point)) {
    throw new DataError(`${where}: entry_point "${problem.entry_point}" is not a Python identifier`, { hint: FORMAT_HINT });
  }
  return problem;
}

function rejectDuplicates(problems: HumanEvalProblem[], describe: (index: number) => string): void {
  const seen = new Map<string, number>();
  problems.forEach((problem, index) => {
    const first = seen.get(problem.task_id);
    if (first !== undefined) {
      throw new DataError(`${describe(index)} repeats task_id "${problem.task_id}" (first at ${describe(first)})`, {
        hint: 'each HumanEval problem must appear once',
      });
    }
    seen.set(problem.task_id, index);
  });
}

/** Read HumanEval from a local .jsonl or .jsonl.gz file in the original format; errors name the line. */
export async function loadHumanEvalFile(path: string, options: { signal?: AbortSignal } = {}): Promise<HumanEvalSet> {
  const absolute = resolve(path);
  if (!absolute.endsWith('.jsonl') && !absolute.endsWith('.jsonl.gz')) {
    throw new UsageError(`cannot read HumanEval from ${path}: not a .jsonl or .jsonl.gz file`, {
      hint: 'pass --humaneval with HumanEval.jsonl or HumanEval.jsonl.gz (the openai/human-eval format)',
    });
  }
  const {
    sha256: fileHash,
    byteLength,
    text,
    lines,
  } = await readJsonLines(absolute, {
    shownAs: path,
    signal: options.signal,
    unreadable: (code, cause) => new DataError(`cannot read HumanEval file ${path}: ${code}`, { hint: 'check the --humaneval path', cause }),
    hint: FORMAT_HINT,
    gzipHint: 'pass the original HumanEval.jsonl.gz, or an uncompressed .jsonl',
  });
  const problems: HumanEvalProblem[] = [];
  const lineOf: number[] = [];
  lines.forEach(({ value, where, index }) => {
    problems.push(parseHumanEvalRow(value, where));
    lineOf.push(index + 1);
  });
  if (problems.length === 0) throw new DataError(`${path} holds no HumanEval problems`, { hint: FORMAT_HINT });
  rejectDuplicates(problems, (index) => `${path} line ${lineOf[index]}`);
  return {
    problems,
    provenance: {
      source: 'local',
      id: absolute,
      files: [{ path: absolute, sha256: fileHash, bytes: byteLength }],
      contentSha256: createHash('sha256').update(text).digest('hex'),
      rowCount: problems.length,
    },
  };
}

/**
 * HumanEval problems from a local file (`source` ending in .jsonl / .jsonl.gz), or, with no source,
 * from the hub data set openai/openai_humaneval (split `test`) through src/datasets/load.ts.
 */
export async function loadHumanEval(source?: string, options: Omit<LoadOptions, 'rows' | 'split' | 'config'> = {}): Promise<HumanEvalSet> {
  if (source !== undefined && source !== HUMANEVAL_HUB_ID) return loadHumanEvalFile(source, { signal: options.signal });
  const loaded = await loadDatasetRows(HUMANEVAL_HUB_ID, { ...options, split: 'test', config: 'openai_humaneval', rows: 100_000 });
  const problems = loaded.rows.map((row, index) => parseHumanEvalRow(row, `${HUMANEVAL_HUB_ID} row ${index}`));
  if (problems.length === 0) throw new DataError(`${HUMANEVAL_HUB_ID} returned no rows`, { hint: 'pass --humaneval PATH to a local HumanEval.jsonl.gz' });
  rejectDuplicates(problems, (index) => `${HUMANEVAL_HUB_ID} row ${index}`);
  return { problems, provenance: loaded.provenance };
}

/** The program human-eval runs for a completion: prompt + completion + "\n" + test + "\n" + check(entry_point). */
export function humanEvalProgram(problem: HumanEvalProblem, completion: string, prompt: string = problem.prompt): string {
  return `${prompt}${completion}\n${problem.test}\ncheck(${problem.entry_point})`;
}

/**
 * The same candidate for an isolated verdict: the candidate's process runs prompt + completion and only defines
 * functions; the tests' process runs the data set's own prompt (for helpers such as HumanEval/32's `poly`, taken
 * from the data set, not from what the completion may have redefined), the tests, and `check(entry_point)`
 * against a stand-in that calls the candidate's entry point with plain data.
 */
export function humanEvalIsolatedProgram(problem: HumanEvalProblem, completion: string, prompt: string = problem.prompt): IsolatedProgram {
  return {
    candidateProgram: `${prompt}${completion}`,
    verifierProgram: `${problem.prompt}\n${problem.test}`,
    verifierCheck: `check(${problem.entry_point})`,
    entryPoint: problem.entry_point,
  };
}

/** One line of a human-eval samples file: `{"task_id": ..., "completion": ...}` (other fields are kept aside). */
export interface HumanEvalSampleLine {
  task_id: string;
  completion: string;
  /** 0-based index among this task's samples, in file order. */
  sample_index: number;
  /** 1-based line number in the file. */
  line: number;
}

const SAMPLE_HINT = 'each line must be a JSON object with string fields "task_id" and "completion" (the openai/human-eval samples format)';

/** Read a human-eval samples .jsonl (or .jsonl.gz); errors name the line. Several lines per task are allowed. */
export async function readHumanEvalSamples(path: string, options: { signal?: AbortSignal } = {}): Promise<{ samples: HumanEvalSampleLine[]; sha256: string }> {
  const { sha256, lines } = await readJsonLines(path, {
    shownAs: path,
    signal: options.signal,
    unreadable: (code, cause) => new UsageError(`cannot read the samples file ${path}: ${code}`, { hint: 'check the --samples path', cause }),
    hint: SAMPLE_HINT,
    gzipHint: SAMPLE_HINT,
  });
  const samples: HumanEvalSampleLine[] = [];
  const perTask = new Map<string, number>();
  lines.forEach(({ value, where, index }) => {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new DataError(`${where} is not a JSON object`, { hint: SAMPLE_HINT });
    const row = value as Record<string, unknown>;
    for (const field of ['task_id', 'completion'] as const) {
      if (!(field in row)) throw new DataError(`${where} has no "${field}" field`, { hint: SAMPLE_HINT });
      if (typeof row[field] !== 'string') throw new DataError(`${where}: "${field}" is not a string`, { hint: SAMPLE_HINT });
    }
    const taskId = row.task_id as string;
    const sampleIndex = perTask.get(taskId) ?? 0;
    perTask.set(taskId, sampleIndex + 1);
    samples.push({ task_id: taskId, completion: row.completion as string, sample_index: sampleIndex, line: index + 1 });
  });
  if (samples.length === 0) throw new DataError(`${path} holds no samples`, { hint: SAMPLE_HINT });
  return { samples, sha256 };
}

/**
 * Read a .jsonl or gzip-compressed .jsonl file: its sha256, size and text, and each non-blank line parsed, with
 * "<file> line N" for errors. A line that is not JSON is an error naming it.
 */
async function readJsonLines(
  path: string,
  options: {
    shownAs: string;
    signal: AbortSignal | undefined;
    /** The error for a file that cannot be read (`code`: ENOENT, EACCES, ...). */
    unreadable: (code: string, cause: unknown) => Error;
    hint: string;
    gzipHint: string;
  },
): Promise<{ sha256: string; byteLength: number; text: string; lines: { value: unknown; where: string; index: number }[] }> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path, { signal: options.signal });
  } catch (error) {
    options.signal?.throwIfAborted();
    throw options.unreadable((error as NodeJS.ErrnoException).code ?? (error as Error).message, error);
  }
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  let text: string;
  try {
    text = (bytes[0] === 0x1f && bytes[1] === 0x8b ? gunzipSync(bytes) : bytes).toString('utf8');
  } catch (error) {
    throw new DataError(`${options.shownAs} is not a valid gzip file (${(error as Error).message})`, { hint: options.gzipHint, cause: error });
  }
  const lines: { value: unknown; where: string; index: number }[] = [];
  text.split('\n').forEach((raw, index) => {
    const line = raw.replace(/\r$/, '');
    if (line.trim() === '') return;
    const where = `${options.shownAs} line ${index + 1}`;
    try {
      lines.push({ value: JSON.parse(line), where, index });
    } catch (error) {
      throw new DataError(`${where} is not valid JSON (${(error as Error).message})`, { hint: options.hint });
    }
  });
  return { sha256, byteLength: bytes.length, text, lines };
}
