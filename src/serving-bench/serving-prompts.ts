import { loadHumanEval } from '../tasks/humaneval/dataset.js';

/** Where the benchmark's prompts come from. */
export type PromptSource = 'humaneval' | 'random';
export const PROMPT_SOURCES: readonly PromptSource[] = ['humaneval', 'random'];

/**
 * The benchmark's prompts: HumanEval's 164 prompts as evaluations send them (stripped, as bigcode's harness does),
 * or `count` synthetic code-like prompts of about `words` words each (deterministic: the same every run), for
 * a chosen input length. Request i sends prompt i modulo their number.
 */
export async function benchmarkPrompts(
  source: PromptSource,
  options: { humaneval?: string; words: number; count: number; signal?: AbortSignal },
): Promise<string[]> {
  if (source === 'humaneval') {
    const { problems } = await loadHumanEval(options.humaneval, { signal: options.signal });
    return problems.map((problem) => problem.prompt.trim());
  }
  return Array.from({ length: options.count }, (_, index) => syntheticPrompt(index, options.words));
}

/** A code-like prompt of `words` words, different for every index. */
export function syntheticPrompt(index: number, words: number): string {
  const lines: string[] = [`def task_${index}(values, limit=${index % 97}):`];
  let count = 3;
  for (let line = 0; count < words; line += 1) {
    const statement = `    total_${line} = values[${(index + line) % 13}] * ${line + 1} + limit  # step ${line}`;
    lines.push(statement);
    count += statement.trim().split(/\s+/).length;
  }
  return `${lines.join('\n')}\n`;
}
