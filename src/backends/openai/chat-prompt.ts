/**
 * HumanEval through a chat endpoint (--chat). The prompt is evalplus's instruct form for chat models (its
 * OpenAI-chat provider): a system line and the instruction, then the problem in a ```python block; bigcode's
 * `instruct-humaneval` likewise gives the function with its docstring and takes the function back out of the
 * reply. The code is the reply's first ```python block (else its first fenced block, else the whole reply), turned
 * back into a completion of the original prompt: the body after the prompt's signature where the reply repeats the
 * function, then the reply's imports, helper functions and classes (the program is prompt + completion + tests, so
 * helpers defined after the function body are defined before the tests call it). Top-level statements of the reply
 * (example calls, prints, `if __name__` blocks) are dropped.
 */
export const CHAT_SYSTEM_PROMPT = 'You are a helpful assistant good at coding.';
export const CHAT_INSTRUCTION = 'Please provide a self-contained Python script that solves the following problem in a markdown code block:';

export function chatMessages(prompt: string): { role: 'system' | 'user'; content: string }[] {
  return [
    { role: 'system', content: CHAT_SYSTEM_PROMPT },
    { role: 'user', content: `${CHAT_INSTRUCTION}\n\`\`\`python\n${prompt.trim()}\n\`\`\`` },
  ];
}

/** The first ```python (```py, ```python3) block of a reply, else its first fenced block, else the whole reply. */
export function extractCode(reply: string): string {
  const fence = /^[ \t]*```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n([\s\S]*?)(?:^[ \t]*```|(?![\s\S]))/gm;
  let first: string | undefined;
  for (const match of reply.matchAll(fence)) {
    const language = match[1]!.toLowerCase();
    if (language === 'python' || language === 'py' || language === 'python3') return match[2]!;
    first ??= match[2]!;
  }
  return first ?? reply;
}

/** The name of the function a HumanEval prompt asks for: its last top-level `def`. */
export function entryPointOf(prompt: string): string | undefined {
  const names = [...prompt.matchAll(/^def\s+([A-Za-z_][A-Za-z0-9_]*)\s*\(/gm)].map((match) => match[1]!);
  return names.at(-1);
}

const indentOf = (line: string): number => line.length - line.trimStart().length;
const blank = (line: string): boolean => line.trim() === '';

/** The index of the line that ends a `def` signature starting at `start` (parentheses balanced, ends with ':'). */
function signatureEnd(lines: readonly string[], start: number): number {
  let depth = 0;
  for (let i = start; i < lines.length; i += 1) {
    const code = lines[i]!.replace(/#.*$/, '');
    for (const char of code) {
      if (char === '(' || char === '[' || char === '{') depth += 1;
      else if (char === ')' || char === ']' || char === '}') depth -= 1;
    }
    if (depth <= 0 && code.trimEnd().endsWith(':')) return i;
  }
  return start;
}

/** Top-level blocks worth keeping around the function: imports, helper functions and classes (with decorators). */
function helperBlocks(lines: readonly string[]): string[] {
  const kept: string[] = [];
  let keeping = false;
  for (const line of lines) {
    if (blank(line)) {
      if (keeping) kept.push(line);
      continue;
    }
    if (indentOf(line) === 0) keeping = /^(import\s|from\s+\S+\s+import\s|def\s|async\s+def\s|class\s|@)/.test(line);
    if (keeping) kept.push(line);
  }
  while (kept.length > 0 && blank(kept.at(-1)!)) kept.pop();
  return kept;
}

/** The reply (a chat model's answer) as a completion of `prompt`: what follows the prompt in the program. */
export function completionFromReply(prompt: string, reply: string): string {
  const code = extractCode(reply).replace(/\r\n/g, '\n');
  const joiner = prompt.endsWith('\n') ? '' : '\n';
  const lines = code.split('\n');
  const entry = entryPointOf(prompt);
  const at = entry === undefined ? -1 : lines.findIndex((line) => new RegExp(`^\\s*(async\\s+)?def\\s+${entry}\\s*\\(`).test(line));
  if (at < 0) {
    // No function to take the body from: the reply is the body itself (indented as one, if it is not).
    const body = lines.some((line) => !blank(line) && indentOf(line) === 0) ? lines.map((line) => (blank(line) ? line : `    ${line}`)) : lines;
    return `${joiner}${body.join('\n').replace(/\s+$/, '')}\n`;
  }
  const indent = indentOf(lines[at]!);
  const end = signatureEnd(lines, at);
  let stop = end + 1;
  while (stop < lines.length && (blank(lines[stop]!) || indentOf(lines[stop]!) > indent)) stop += 1;
  // Re-indented to the prompt's four spaces (its docstring's), nested blocks keeping their depth.
  const bodyLines = lines.slice(end + 1, stop);
  const bodyIndent = Math.min(...bodyLines.filter((line) => !blank(line)).map(indentOf), Number.MAX_SAFE_INTEGER);
  const body = bodyLines.map((line) => (blank(line) ? '' : `${' '.repeat(4 + indentOf(line) - bodyIndent)}${line.trimStart()}`));
  while (body.length > 0 && blank(body.at(-1)!)) body.pop();
  const helpers = indent === 0 ? helperBlocks([...lines.slice(0, at), ...lines.slice(stop)]) : [];
  const tail = helpers.length > 0 ? `\n\n${helpers.join('\n')}\n` : '\n';
  return `${joiner}${body.join('\n')}${tail}`;
}
