import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DataError } from '../util/errors.js';
import { specsDir } from './paths.js';

/** A committed data-set spec (datasets/*.json): the defaults a hub id gets unless flags override them. */
export interface DatasetSpec {
  schemaVersion: 1;
  id: string;
  revision: string;
  config: string;
  split: string;
  textField: string;
  columns: string[];
  license: string;
  file: string;
}

const SCHEMA_VERSION = 1;

export async function listDatasetSpecs(directory = specsDir()): Promise<DatasetSpec[]> {
  let names: string[];
  try {
    names = (await readdir(directory)).filter((name) => name.endsWith('.json')).sort();
  } catch {
    return [];
  }
  return Promise.all(names.map((name) => readSpec(join(directory, name))));
}

export async function findDatasetSpec(repo: string, directory = specsDir()): Promise<DatasetSpec | undefined> {
  return (await listDatasetSpecs(directory)).find((spec) => spec.id === repo);
}

async function readSpec(file: string): Promise<DatasetSpec> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, 'utf8'));
  } catch (error) {
    throw new DataError(`data-set spec ${file} is not readable JSON (${(error as Error).message})`, {
      hint: 'fix the file or remove it from datasets/',
    });
  }
  const record = raw as Record<string, unknown>;
  if (record.schema_version !== SCHEMA_VERSION) {
    throw new DataError(`data-set spec ${file} has schema_version ${String(record.schema_version)}, expected ${SCHEMA_VERSION}`, {
      hint: 'update the spec to the current schema (see docs/datasets.md)',
    });
  }
  const text = (key: string): string => {
    const value = record[key];
    if (typeof value !== 'string' || value === '') {
      throw new DataError(`data-set spec ${file} lacks a string "${key}"`, { hint: 'see docs/datasets.md for the spec fields' });
    }
    return value;
  };
  const columns = Array.isArray(record.columns) ? record.columns.filter((c): c is string => typeof c === 'string') : [];
  return {
    schemaVersion: SCHEMA_VERSION,
    id: text('id'),
    revision: text('revision'),
    config: text('config'),
    split: text('split'),
    textField: text('text_field'),
    columns,
    license: text('license'),
    file,
  };
}
