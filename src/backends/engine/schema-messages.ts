import type { ErrorObject } from 'ajv';

/**
 * One line (and a hint) for an ajv error against an engine op schema, worded as the Python engine words its own
 * (cuda/evalpipe_engine/schema_messages.py): `n = 0 is out of range: n must be an integer >= 1`,
 * `unknown quant "fp7"` (hint: use one of ...), `row 2 text must be a string, got 42`. The shared fixtures in
 * schemas/engine/examples/ hold the expected wording for both.
 */
export interface SchemaViolation {
  /** JSON pointer of the value (for `required` and `additionalProperties`: of the object). */
  pointer: string;
  keyword: string;
  /** The place as a person reads it: `max_new_tokens`, `requests[1].samples`, `row 7 text`. */
  where: string;
  message: string;
  hint?: string;
}

type SchemaNode = Record<string, unknown>;

const TYPE_PHRASES: Record<string, string[]> = {
  null: ['null'],
  boolean: ['true', 'false'],
  integer: ['an integer'],
  number: ['a number'],
  string: ['a string'],
  array: ['a list'],
  object: ['an object'],
};
const RANGE_KEYWORDS = new Set(['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum']);
const LONGEST_VALUE = 80;

export function render(value: unknown): string {
  const text = value === undefined ? 'undefined' : (JSON.stringify(value) ?? String(value));
  return text.length <= LONGEST_VALUE ? text : `${text.slice(0, LONGEST_VALUE - 3)}...`;
}

function orList(parts: string[]): string {
  return parts.length === 1 ? parts[0]! : `${parts.slice(0, -1).join(', ')} or ${parts.at(-1)!}`;
}

function typeNames(schema: SchemaNode): string[] {
  const type = schema.type;
  return typeof type === 'string' ? [type] : Array.isArray(type) ? (type as string[]) : [];
}

function typePhrase(names: string[]): string {
  return orList(names.flatMap((name) => TYPE_PHRASES[name] ?? [name]));
}

function bounds(schema: SchemaNode): string {
  let low: [string, unknown] | undefined = 'minimum' in schema ? ['[', schema.minimum] : undefined;
  if ('exclusiveMinimum' in schema) low = ['(', schema.exclusiveMinimum];
  let high: [string, unknown] | undefined = 'maximum' in schema ? [']', schema.maximum] : undefined;
  if ('exclusiveMaximum' in schema) high = [')', schema.exclusiveMaximum];
  if (low && high) return `in ${low[0]}${render(low[1])}, ${render(high[1])}${high[0]}`;
  if (low) return `${low[0] === '[' ? '>=' : '>'} ${render(low[1])}`;
  return `${high?.[0] === ']' ? '<=' : '<'} ${render(high?.[1])}`;
}

function exampleHint(schema: SchemaNode | undefined): string | undefined {
  const examples = schema?.examples;
  return Array.isArray(examples) && examples.length > 0 ? `e.g. ${render(examples[0])}` : undefined;
}

/** The `x-name` template filled from an item's own fields; undefined when a field is unusable or is `skip`. */
function itemName(template: string, item: unknown, skip: string | undefined): string | undefined {
  if (typeof item !== 'object' || item === null || Array.isArray(item)) return undefined;
  let failed = false;
  const name = template.replace(/\{([^}]*)\}/g, (_, field: string) => {
    const value = (item as Record<string, unknown>)[field];
    if (field === skip) failed = true;
    else if (typeof value === 'number' && Number.isInteger(value)) return String(value);
    else if (typeof value === 'string' && value !== '') return JSON.stringify(value);
    else failed = true;
    return '';
  });
  return failed ? undefined : name;
}

function segments(pointer: string): string[] {
  return pointer === ''
    ? []
    : pointer
        .slice(1)
        .split('/')
        .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'));
}

interface Place {
  where: string;
  named: boolean;
}

/** Walk the instance and its schema along `pointer`, naming array items by their schema's `x-name`. */
function placeOf(pointer: string, root: unknown, schema: SchemaNode, resolve: (ref: string) => SchemaNode | undefined): Place {
  let where = '';
  let named = false;
  let node: SchemaNode | undefined = schema;
  let value: unknown = root;
  const parts = segments(pointer);
  parts.forEach((part, i) => {
    while (node && typeof node.$ref === 'string') node = resolve(node.$ref);
    if (Array.isArray(value)) {
      const index = Number(part);
      const items = node?.items as SchemaNode | undefined;
      const template = items?.['x-name'];
      const next = parts[i + 1];
      const label = typeof template === 'string' ? itemName(template, value[index], next) : undefined;
      where = label ?? `${where}[${index}]`;
      named = label !== undefined;
      node = items;
      value = value[index];
    } else {
      where = !where ? part : named ? `${where} ${part}` : `${where}.${part}`;
      named = false;
      node = (node?.properties as Record<string, SchemaNode> | undefined)?.[part];
      value = (value as Record<string, unknown> | undefined)?.[part];
    }
  });
  return { where, named };
}

function fieldOf(place: Place, name: string): string {
  if (!place.where) return name;
  return place.named ? `${place.where} ${name}` : `${place.where}.${name}`;
}

/**
 * The first violation among ajv's errors (run with `verbose: true`, so each error carries its schema node and
 * value), with the other `required` / `additionalProperties` errors of the same object folded into it.
 */
export function describeFirst(
  errors: readonly ErrorObject[],
  root: unknown,
  schema: SchemaNode,
  resolve: (ref: string) => SchemaNode | undefined,
): SchemaViolation {
  const first = errors[0]!;
  const node = (first.parentSchema ?? {}) as SchemaNode;
  const place = placeOf(first.instancePath, root, schema, resolve);
  const where = place.where || 'params';
  const value: unknown = first.data;
  const base = { pointer: first.instancePath, keyword: first.keyword, where: place.where };
  const sameObject = (keyword: string) => errors.filter((e) => e.keyword === keyword && e.instancePath === first.instancePath);
  switch (first.keyword) {
    case 'type':
      return { ...base, message: `${where} must be ${typePhrase(typeNames(node))}, got ${render(value)}`, hint: exampleHint(node) };
    case 'required': {
      const names = sameObject('required').map((e) => String((e.params as { missingProperty: string }).missingProperty));
      const properties = (node.properties ?? {}) as Record<string, SchemaNode>;
      const message = `${names.map((name) => fieldOf(place, name)).join(' and ')} ${names.length === 1 ? 'is' : 'are'} required`;
      return { ...base, message, hint: exampleHint(properties[names[0]!]) };
    }
    case 'additionalProperties': {
      const names = sameObject('additionalProperties')
        .map((e) => String((e.params as { additionalProperty: string }).additionalProperty))
        .sort();
      const allowed = Object.keys((node.properties ?? {}) as object).join(', ');
      const hint = allowed ? `use ${allowed}` : 'send no fields here';
      const message = first.instancePath === '' ? `unknown parameter(s) ${names.join(', ')}` : `${where} has unknown field(s) ${names.join(', ')}`;
      return { ...base, message, hint };
    }
    case 'enum': {
      const options = (node.enum as unknown[]).filter((option) => option !== null).map((option) => (typeof option === 'string' ? option : render(option)));
      return { ...base, message: `unknown ${where} ${render(value)}`, hint: `use one of ${options.join(', ')}` };
    }
    case 'const':
      return { ...base, message: `${where} must be ${render(node.const)}, got ${render(value)}` };
    case 'minLength':
      return {
        ...base,
        message: node.minLength === 1 ? `${where} must be a non-empty string` : `${where} must be ${String(node.minLength)} characters or more`,
      };
    case 'maxLength':
      return { ...base, message: `${where} must be ${String(node.maxLength)} characters or fewer` };
    case 'minItems':
      return { ...base, message: node.minItems === 1 ? `${where} must be a non-empty list` : `${where} must have ${String(node.minItems)} items or more` };
    case 'maxItems':
      return { ...base, message: `${where} must have ${String(node.maxItems)} items or fewer` };
    case 'uniqueItems':
      return { ...base, message: `${where} must not hold the same item twice, got ${render(value)}` };
    case 'anyOf':
      return { ...base, message: `${where} matches none of its allowed forms, got ${render(value)}` };
    default:
      if (RANGE_KEYWORDS.has(first.keyword)) {
        const kinds = typeNames(node).filter((name) => name === 'integer' || name === 'number');
        const kind = typePhrase([kinds[0] ?? 'number']);
        return { ...base, message: `${where} = ${render(value)} is out of range: ${where} must be ${kind} ${bounds(node)}` };
      }
      return { ...base, message: `${where} is not allowed here` };
  }
}
