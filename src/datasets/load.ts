/**
 * The public face of src/datasets: turn a source id (hub id, local file, or `builtin:smoke`)
 * into rows, an apache-arrow table, and provenance that a run manifest can record.
 *
 * Library code never reads process.env: the CLI edge calls hubOptionsFromEnv() and passes the result in.
 */
import type { Table } from 'apache-arrow';
import { UsageError } from '../util/errors.js';
import { rowsToTable } from './arrow-table.js';
import { contentSha256OfRows } from './content-hash.js';
import { pullHubDataset } from './hub-pull.js';
import { readLocalRows } from './read-local.js';
import { resolveSource } from './source.js';
import { SMOKE_SOURCE_ID, smokeRows } from './smoke-texts.js';
import { findDatasetSpec } from './specs.js';
import { extractTexts } from './text-field.js';

/** Where the rows came from and exactly which bytes they were: recorded in the run manifest. */
export interface DatasetProvenance {
  /** `builtin` is the smoke set shipped in the code (`builtin:smoke`). */
  source: 'hub' | 'local' | 'builtin';
  /** Hub repo id (`flytech/python-codes-25k`), absolute local path, or `builtin:smoke`. */
  id: string;
  /** Hub only: the resolved commit sha the files came from. */
  revision?: string;
  /** Every file read (hub paths relative to the repo; local: the absolute path), with its sha256 and size. */
  files: { path: string; sha256: string; bytes: number }[];
  /** sha256 over the rows actually returned (see content-hash.ts): the same rows give the same hash in any format. */
  contentSha256: string;
  /** Number of rows returned. */
  rowCount: number;
}

export interface LoadOptions {
  /** Hub split (default from the data-set spec, else `train`). */
  split?: string;
  /** Hub config (default from the data-set spec, else `default`). */
  config?: string;
  /** Take the first N rows (default 512, as in the study). Must be a positive integer. */
  rows?: number;
  /** Hub revision: branch, tag or commit sha (default from the spec, else `refs/convert/parquet`). */
  revision?: string;
  signal?: AbortSignal;
  /** Hub endpoint (default https://huggingface.co). */
  hubUrl?: string;
  accessToken?: string;
  /** Never touch the network: use the cache or fail with one clear error. */
  offline?: boolean;
  /** Cache root (default: <repo>/datasets/cache). */
  cacheDir?: string;
}

export interface TextLoadOptions extends LoadOptions {
  /** A column name, or a template over columns such as `{instruction}\n{output}` (default from the spec). */
  textField?: string;
  /** Drop rows whose text is empty instead of failing (default false: an empty row is an error). */
  skipEmpty?: boolean;
}

export const DEFAULT_ROWS = 512;

export interface LoadedRows {
  rows: Record<string, unknown>[];
  table: Table;
  provenance: DatasetProvenance;
  /** The column names, in file order (also for zero-row reads). */
  columns: string[];
  /** The default text field from the data-set spec, when the source has one. */
  defaultTextField?: string;
}

export async function loadDatasetRows(source: string, options: LoadOptions = {}): Promise<LoadedRows> {
  const rowLimit = checkRowCount(options.rows);
  options.signal?.throwIfAborted();
  const resolved = resolveSource(source);

  if (resolved.kind === 'builtin') {
    const rows = smokeRows().slice(0, rowLimit);
    const columns = ['name', 'text'];
    return {
      rows,
      columns,
      table: rowsToTable(rows, columns),
      provenance: {
        source: 'builtin',
        id: SMOKE_SOURCE_ID,
        files: [],
        contentSha256: contentSha256OfRows(rows, columns),
        rowCount: rows.length,
      },
      defaultTextField: 'text',
    };
  }

  if (resolved.kind === 'local') {
    const read = await readLocalRows(resolved.path, { rows: rowLimit, signal: options.signal });
    return {
      rows: read.rows,
      columns: read.columns,
      table: read.table,
      provenance: {
        source: 'local',
        id: resolved.path,
        files: [read.file],
        contentSha256: contentSha256OfRows(read.rows, read.columns),
        rowCount: read.rows.length,
      },
    };
  }

  const spec = await findDatasetSpec(resolved.repo);
  const pulled = await pullHubDataset({
    repo: resolved.repo,
    revision: options.revision ?? spec?.revision ?? 'refs/convert/parquet',
    config: options.config ?? spec?.config ?? 'default',
    split: options.split ?? spec?.split ?? 'train',
    rows: rowLimit,
    signal: options.signal,
    hubUrl: options.hubUrl,
    accessToken: options.accessToken,
    offline: options.offline ?? false,
    cacheDir: options.cacheDir,
  });
  const result: LoadedRows = {
    rows: pulled.rows,
    columns: pulled.columns,
    table: pulled.table,
    provenance: {
      source: 'hub',
      id: resolved.repo,
      revision: pulled.revision,
      files: pulled.files,
      contentSha256: contentSha256OfRows(pulled.rows, pulled.columns),
      rowCount: pulled.rows.length,
    },
  };
  if (spec) result.defaultTextField = spec.textField;
  return result;
}

export async function loadTextRows(
  source: string,
  options: TextLoadOptions = {},
): Promise<{ texts: { index: number; text: string }[]; provenance: DatasetProvenance; textField: string; skippedEmpty: number[] }> {
  const loaded = await loadDatasetRows(source, options);
  const textField = options.textField ?? loaded.defaultTextField ?? guessTextField(loaded.columns, source);
  const { texts, skippedEmpty } = extractTexts(loaded.rows, loaded.columns, textField, {
    skipEmpty: options.skipEmpty ?? false,
    source,
  });
  return { texts, provenance: loaded.provenance, textField, skippedEmpty };
}

/** With no spec and no --text-field: a lone `text`/`content`/`code` column, else ask. */
function guessTextField(columns: string[], source: string): string {
  for (const candidate of ['text', 'content', 'code', 'output']) {
    if (columns.includes(candidate)) return candidate;
  }
  throw new UsageError(`${source} has no obvious text column (columns: ${columns.join(', ') || 'none'})`, {
    hint: `pick one with --text-field ${columns[0] ?? '<column>'}, or a template such as --text-field "${
      columns
        .slice(0, 2)
        .map((c) => `{${c}}`)
        .join('\\n') || '{a}\\n{b}'
    }"`,
  });
}

function checkRowCount(rows: number | undefined): number {
  if (rows === undefined) return DEFAULT_ROWS;
  if (!Number.isInteger(rows) || rows <= 0) {
    throw new UsageError(`--rows must be a positive whole number, got ${String(rows)}`, {
      hint: `pass e.g. --rows ${DEFAULT_ROWS} (the default) to take the first ${DEFAULT_ROWS} rows`,
    });
  }
  return rows;
}
