import { UsageError } from './errors.js';

/** The flags a command was given (yargs' parsed argv plus a preset's values), read by name and type. */
export type Flags = Readonly<Record<string, unknown>>;

export function flagString(flags: Flags, name: string): string | undefined {
  const value = flags[name];
  return value === undefined ? undefined : String(value);
}

export function flagNumber(flags: Flags, name: string): number | undefined {
  const value = flags[name];
  return value === undefined ? undefined : Number(value);
}

export function flagBoolean(flags: Flags, name: string): boolean | undefined {
  const value = flags[name];
  return value === undefined ? undefined : Boolean(value);
}

export function flagStrings(flags: Flags, name: string): string[] | undefined {
  const value = flags[name];
  if (value === undefined) return undefined;
  return (Array.isArray(value) ? value : [value]).map(String);
}

export function nonEmpty(value: string, flag: string): string {
  if (value.trim() === '') throw new UsageError(`${flag} is empty`, { hint: `give ${flag} a value` });
  return value;
}

export function int(value: number, flag: string): number {
  if (!Number.isInteger(value)) throw new UsageError(`${flag} must be a whole number, got ${value}`, { hint: `e.g. ${flag} 1` });
  return value;
}

export function positiveInt(value: number, flag: string): number {
  if (!Number.isInteger(value) || value <= 0) {
    throw new UsageError(`${flag} must be a positive whole number, got ${String(value)}`, { hint: `e.g. ${flag} ${flag === '--rows' ? 512 : 1}` });
  }
  return value;
}

export function nonNegativeInt(value: number, flag: string): number {
  if (!Number.isInteger(value) || value < 0) throw new UsageError(`${flag} must be a whole number ≥ 0, got ${String(value)}`, { hint: `e.g. ${flag} 2` });
  return value;
}

export function positiveNumber(value: number, flag: string): number {
  if (!(value > 0) || !Number.isFinite(value)) throw new UsageError(`${flag} must be a positive number, got ${String(value)}`, { hint: `e.g. ${flag} 3` });
  return value;
}

/** A comma list of positive whole numbers (`--batches 2,4,8`). */
export function parseIntList(text: string, flag: string): number[] {
  const values = text.split(',').map((item) => Number(item.trim()));
  if (values.length === 0 || values.some((value) => !Number.isInteger(value) || value <= 0)) {
    throw new UsageError(`${flag} must be a comma list of positive whole numbers, got "${text}"`, { hint: `e.g. ${flag} 2,4,8` });
  }
  return values;
}

/**
 * The one comma-list parser of the CLI (`--quant bf16,int8`, `--tasks perplexity,humaneval`, `--stages ...`):
 * items trimmed, none empty, each one of `allowed`, none twice. `order: 'allowed'` returns them in `allowed`'s
 * order (where the order must not change a run's identity), else as given.
 */
export function parseChoiceList<T extends string>(
  text: string | readonly string[],
  allowed: readonly T[],
  flag: string,
  options: { order?: 'given' | 'allowed' } = {},
): T[] {
  const hint = `use a comma list of ${allowed.join(', ')}`;
  // A flag given twice (`--tasks a --tasks b`) reaches here as a list: its values read as one comma list.
  const items = (typeof text === 'string' ? [text] : text)
    .flatMap((part) => String(part).split(','))
    .map((item) => item.trim())
    .filter((item) => item !== '');
  if (items.length === 0) throw new UsageError(`${flag} is empty`, { hint });
  const unknown = items.filter((item) => !allowed.includes(item as T));
  if (unknown.length > 0) throw new UsageError(`${flag}: unknown value(s) ${unknown.join(', ')}`, { hint });
  const repeated = items.find((item, index) => items.indexOf(item) !== index);
  if (repeated !== undefined) throw new UsageError(`${flag} names ${repeated} twice`, { hint: 'give each value once' });
  return options.order === 'allowed' ? allowed.filter((item) => items.includes(item)) : (items as T[]);
}
