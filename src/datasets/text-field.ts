import { DataError, UsageError } from '../util/errors.js';

/**
 * A text field is either one column name (`output`) or a template over columns (`{instruction}\n{output}`).
 * In a template, `{name}` inserts a column, `{{` and `}}` are literal braces, and the escapes `\n`, `\t`
 * and `\\` are understood so a shell flag can carry a newline.
 */
export type TextFieldPart = { literal: string } | { column: string };

export interface ParsedTextField {
  spec: string;
  parts: TextFieldPart[];
  columns: string[];
  isTemplate: boolean;
}

export function parseTextField(spec: string): ParsedTextField {
  if (spec.trim() === '') {
    throw new UsageError('--text-field is empty', { hint: 'name a column (e.g. --text-field output) or a template such as "{instruction}\\n{output}"' });
  }
  if (!spec.includes('{') && !spec.includes('}')) {
    return { spec, parts: [{ column: spec }], columns: [spec], isTemplate: false };
  }
  const parts: TextFieldPart[] = [];
  let literal = '';
  for (let i = 0; i < spec.length; i += 1) {
    const char = spec[i] as string;
    const next = spec[i + 1];
    if (char === '\\' && (next === 'n' || next === 't' || next === '\\')) {
      literal += next === 'n' ? '\n' : next === 't' ? '\t' : '\\';
      i += 1;
    } else if ((char === '{' && next === '{') || (char === '}' && next === '}')) {
      literal += char;
      i += 1;
    } else if (char === '{') {
      const close = spec.indexOf('}', i + 1);
      const name = close === -1 ? '' : spec.slice(i + 1, close);
      if (close === -1 || name === '' || name.includes('{')) {
        throw new UsageError(`--text-field template "${spec}" has an unclosed or empty {…} at character ${i + 1}`, {
          hint: 'write columns as {name}, literal braces as {{ and }}',
        });
      }
      if (literal) parts.push({ literal });
      literal = '';
      parts.push({ column: name });
      i = close;
    } else if (char === '}') {
      throw new UsageError(`--text-field template "${spec}" has a stray } at character ${i + 1}`, { hint: 'write a literal } as }}' });
    } else {
      literal += char;
    }
  }
  if (literal) parts.push({ literal });
  const columns = [...new Set(parts.flatMap((part) => ('column' in part ? [part.column] : [])))];
  if (columns.length === 0) {
    throw new UsageError(`--text-field template "${spec}" names no column`, { hint: 'put at least one {column} in it, e.g. "{instruction}\\n{output}"' });
  }
  return { spec, parts, columns, isTemplate: true };
}

/**
 * Turn rows into texts with the chosen field. A row whose referenced columns are all empty (missing, null or
 * whitespace only) is an error naming the row index, unless skipEmpty drops it (its index is then reported).
 */
export function extractTexts(
  rows: readonly Record<string, unknown>[],
  columns: readonly string[],
  textField: string,
  options: { skipEmpty: boolean; source: string },
): { texts: { index: number; text: string }[]; skippedEmpty: number[] } {
  const parsed = parseTextField(textField);
  const missing = parsed.columns.filter((column) => !columns.includes(column));
  if (missing.length > 0) {
    const what = missing.length === 1 ? `column "${missing[0]}"` : `columns ${missing.map((m) => `"${m}"`).join(', ')}`;
    throw new UsageError(`${options.source} has no ${what} (available: ${columns.join(', ') || 'none'})`, {
      hint: `pick one with --text-field ${columns[0] ?? '<column>'}, or a template over them such as "{${columns[0] ?? 'a'}}\\n{${columns[1] ?? 'b'}}"`,
    });
  }
  const texts: { index: number; text: string }[] = [];
  const skippedEmpty: number[] = [];
  rows.forEach((row, index) => {
    let text = '';
    let hasContent = false;
    for (const part of parsed.parts) {
      if ('literal' in part) {
        text += part.literal;
        continue;
      }
      const value = cellText(row[part.column], index, part.column, options.source);
      if (value.trim() !== '') hasContent = true;
      text += value;
    }
    if (!hasContent) {
      if (options.skipEmpty) {
        skippedEmpty.push(index);
        return;
      }
      throw new DataError(`${options.source} row ${index} has an empty text field "${textField}"`, {
        hint: 'choose a different --text-field (or a template over several columns), or pass --skip-empty to drop empty rows',
      });
    }
    texts.push({ index, text });
  });
  return { texts, skippedEmpty };
}

function cellText(value: unknown, index: number, column: string, source: string): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  throw new DataError(`${source} row ${index} column "${column}" holds ${Array.isArray(value) ? 'a list' : typeof value}, not text`, {
    hint: 'choose a string column with --text-field',
  });
}
