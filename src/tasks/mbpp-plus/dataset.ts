import { loadDatasetRows, type LoadOptions } from '../../datasets/load.js';
import { DataError } from '../../util/errors.js';
import type { PlusConfig } from '../evalplus/config.js';
import type { PlusProblem } from '../evalplus/program.js';
import type { PlusSet } from '../evalplus/task-factory.js';

export const MBPP_PLUS_HUB_ID = 'evalplus/mbppplus';

const FORMAT_HINT =
  'each row needs task_id (integer or string), code, prompt, test_list (a list of assert lines) and test (the evalplus test program), as in evalplus/mbppplus';

/** evalplus's MBPP+ prompt: the task's text and its first original test, as a docstring the model continues. */
export function mbppPlusPrompt(text: string, firstTest: string): string {
  return `"""\n${text}\n${firstTest}\n"""\n`;
}

/** The function the tests call: `assertion(NAME(*inp), ...)` in evalplus's test, else the first test's call. */
export function mbppEntryPoint(test: string, testList: readonly string[], code: string): string | undefined {
  const fromTest = test.match(/assertion\(\s*([A-Za-z_][A-Za-z0-9_]*)\(\*inp\)/);
  if (fromTest) return fromTest[1];
  const defs = [...code.matchAll(/^def\s+([A-Za-z_][A-Za-z0-9_]*)\s*\(/gm)].map((match) => match[1]!);
  for (const line of testList) for (const name of defs) if (new RegExp(`\\b${name}\\s*\\(`).test(line)) return name;
  return defs[0];
}

/** One MBPP+ row as a problem; `where` names it in errors. */
export function parseMbppPlusRow(value: Record<string, unknown>, where: string): PlusProblem {
  const id = value.task_id;
  if (typeof id !== 'number' && typeof id !== 'bigint' && typeof id !== 'string') throw new DataError(`${where}: "task_id" is missing`, { hint: FORMAT_HINT });
  for (const field of ['code', 'prompt', 'test'] as const) {
    if (typeof value[field] !== 'string') throw new DataError(`${where}: "${field}" is not a string`, { hint: FORMAT_HINT });
  }
  const list = (field: string): string[] => {
    const raw = value[field] ?? [];
    const items = Array.isArray(raw) ? raw : raw && typeof raw === 'object' && 'toArray' in raw ? (raw as { toArray(): unknown[] }).toArray() : null;
    if (!items?.every((item) => typeof item === 'string')) throw new DataError(`${where}: "${field}" is not a list of strings`, { hint: FORMAT_HINT });
    return [...(items as string[])];
  };
  const testList = list('test_list');
  const imports = list('test_imports');
  if (testList.length === 0) throw new DataError(`${where}: "test_list" is empty`, { hint: FORMAT_HINT });
  const code = value.code as string;
  const test = value.test as string;
  const entry = mbppEntryPoint(test, testList, code);
  if (!entry) throw new DataError(`${where}: no entry point found (no assertion(NAME(*inp)) in test, no def in code)`, { hint: FORMAT_HINT });
  const taskId = typeof id === 'string' ? (id.startsWith('Mbpp/') ? id : `Mbpp/${id}`) : `Mbpp/${String(id)}`;
  const prelude = imports.length > 0 ? `${imports.join('\n')}\n` : '';
  return {
    task_id: taskId,
    prompt: mbppPlusPrompt(value.prompt as string, testList[0]!),
    entry_point: entry,
    canonical_solution: code,
    base: { source: `${prelude}${testList.join('\n')}` },
    plus: { source: `${prelude}${test}` },
  };
}

/** MBPP+ problems: evalplus/mbppplus (split test), or a local .jsonl/.parquet in its format. */
export async function loadMbppPlus(config: Pick<PlusConfig, 'source'>, options: Omit<LoadOptions, 'rows' | 'split' | 'config'> = {}): Promise<PlusSet> {
  const source = config.source ?? MBPP_PLUS_HUB_ID;
  const loaded = await loadDatasetRows(source, { ...options, split: 'test', config: 'default', rows: 100_000 });
  const problems = loaded.rows.map((row, index) => parseMbppPlusRow(row, `${source} row ${index}`));
  if (problems.length === 0) throw new DataError(`${source} holds no MBPP+ problems`, { hint: 'pass --mbpp-plus PATH to an MBPP+ .jsonl' });
  const seen = new Set<string>();
  for (const problem of problems) {
    if (seen.has(problem.task_id)) throw new DataError(`${source} repeats task_id ${problem.task_id}`, { hint: FORMAT_HINT });
    seen.add(problem.task_id);
  }
  return { problems, provenance: { 'mbpp-plus': loaded.provenance } };
}
