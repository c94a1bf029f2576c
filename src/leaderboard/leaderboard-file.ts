import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { writeJsonAtomic } from '../util/atomic-file.js';
import { DataError } from '../util/errors.js';
import type { LeaderboardEntry } from './entry.js';
import { assertValidEntry } from './validate.js';

/** 2: entries gained status, missing, settings and subset; version 1 files are migrated on read. */
export const LEADERBOARD_SCHEMA_VERSION = 2;

/** leaderboard.json: a versioned list of entries, each matching schemas/leaderboard-entry.schema.json. */
export interface LeaderboardFile {
  schema_version: number;
  generated_at: string;
  entries: LeaderboardEntry[];
}

const HINT = 'rebuild it with `evalpipe leaderboard build <run dirs> -o <file>`';

/** Read and validate a leaderboard file; every problem names the file and the field. */
export async function readLeaderboardFile(path: string): Promise<LeaderboardFile> {
  const file = resolve(path);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new DataError(`cannot read leaderboard ${file}: ${(error as Error).message}`, { cause: error, hint: 'check the path' });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new DataError(`${file} is not valid JSON: ${(error as Error).message}`, { cause: error, hint: HINT });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new DataError(`${file}: the top level must be an object with schema_version and entries`, { hint: HINT });
  }
  const board = parsed as Partial<LeaderboardFile>;
  if (typeof board.schema_version !== 'number') throw new DataError(`${file}: schema_version is missing or not a number`, { hint: HINT });
  if (board.schema_version > LEADERBOARD_SCHEMA_VERSION) {
    throw new DataError(`${file}: leaderboard schema_version ${board.schema_version} is newer than this evalpipe reads (${LEADERBOARD_SCHEMA_VERSION})`, {
      hint: 'upgrade evalpipe',
    });
  }
  if (!Array.isArray(board.entries)) throw new DataError(`${file}: entries is missing or not an array`, { hint: HINT });
  const entries = board.schema_version < 2 ? board.entries.map(migrateVersion1Entry) : board.entries;
  for (const [index, entry] of entries.entries()) assertValidEntry(entry, { file, path: `entries[${index}]` });
  return { schema_version: LEADERBOARD_SCHEMA_VERSION, generated_at: String(board.generated_at ?? ''), entries };
}

/**
 * A version 1 entry as version 2: its settings and subset were not recorded (null, not a subset as far as is
 * known), and it is complete when it has both quality figures, else partial with the missing ones named.
 */
function migrateVersion1Entry(entry: LeaderboardEntry): LeaderboardEntry {
  const old = entry as unknown as Record<string, unknown> & { metrics?: LeaderboardEntry['metrics'] };
  if (typeof old !== 'object' || old === null || old.schema_version !== 1) return entry; // the schema check names what is wrong
  const missing = (['perplexity', 'humaneval'] as const).filter((task) => old.metrics?.[task] === null || old.metrics?.[task] === undefined);
  return {
    ...(old as unknown as LeaderboardEntry),
    schema_version: 2,
    status: missing.length === 0 ? 'complete' : 'partial',
    missing,
    settings: { humaneval: null, perplexity: null },
    subset: { is_subset: false, humaneval: null, perplexity: null },
  };
}

export async function writeLeaderboardFile(path: string, entries: LeaderboardEntry[], now = new Date()): Promise<LeaderboardFile> {
  for (const [index, entry] of entries.entries()) assertValidEntry(entry, { file: resolve(path), path: `entries[${index}]` });
  const board: LeaderboardFile = { schema_version: LEADERBOARD_SCHEMA_VERSION, generated_at: now.toISOString(), entries };
  await writeJsonAtomic(resolve(path), board);
  return board;
}
