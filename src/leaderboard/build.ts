import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { summariseRunDir } from '../pipeline/report/run-summary.js';
import { UsageError } from '../util/errors.js';
import { entryFromSummary } from './entry.js';
import { readLeaderboardFile, writeLeaderboardFile, type LeaderboardFile } from './leaderboard-file.js';
import { mergeEntries, type MergeConflict, type SourcedEntry } from './merge.js';
import { assertValidEntry } from './validate.js';

/**
 * `leaderboard build`: one entry per run directory, plus the entries of any leaderboard .json files given,
 * merged (later run wins per key) and written atomically to `out`.
 */
export async function buildLeaderboard(
  inputs: readonly string[],
  out: string,
  now = new Date(),
): Promise<{ board: LeaderboardFile; conflicts: MergeConflict[] }> {
  if (inputs.length === 0)
    throw new UsageError('no inputs given', {
      hint: 'pass run directories (and/or leaderboard .json files to merge), e.g. evalpipe leaderboard build results/* -o leaderboard.json',
    });
  const sourced: SourcedEntry[] = [];
  for (const input of inputs) {
    const path = resolve(input);
    let isFile = false;
    try {
      isFile = (await stat(path)).isFile();
    } catch {
      throw new UsageError(`${path} does not exist`, { hint: 'pass run directories or leaderboard .json files' });
    }
    if (isFile) {
      const board = await readLeaderboardFile(path);
      for (const entry of board.entries) sourced.push({ entry, source: path });
      continue;
    }
    const entry = entryFromSummary(await summariseRunDir(path));
    assertValidEntry(entry, { file: path, path: 'entry' });
    sourced.push({ entry, source: path });
  }
  const { entries, conflicts } = mergeEntries(sourced);
  const board = await writeLeaderboardFile(out, entries, now);
  return { board, conflicts };
}
