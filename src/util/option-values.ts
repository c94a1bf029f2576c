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
