import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { summariseRun } from '../pipeline/report/run-summary.js';
import { readRunData } from '../pipeline/store/run-reader.js';
import { DataError, UsageError } from '../util/errors.js';
import { entryFromSummary } from './entry.js';
import { entryFacts } from './entry-facts.js';
import { readLeaderboardFile, writeLeaderboardFile, type LeaderboardFile } from './leaderboard-file.js';
import { mergeEntries, type MergeConflict, type SourcedEntry } from './merge.js';
import { assertValidEntry } from './validate.js';

/**
 * `leaderboard build`: one entry per run directory, plus the entries of any leaderboard .json files given,
 * merged (per key the entry covering more wins, then the later run) and written atomically to `out`. A run that
 * is not scored, or lacks a task's figures, is refused naming it, unless `allowPartial` adds it marked partial
 * (and then it never replaces a complete entry).
 */
export async function buildLeaderboard(
  inputs: readonly string[],
  out: string,
  now = new Date(),
  options: { allowPartial?: boolean } = {},
): Promise<{ board: LeaderboardFile; conflicts: MergeConflict[]; partial: string[] }> {
  if (inputs.length === 0)
    throw new UsageError('no inputs given', {
      hint: 'pass run directories (and/or leaderboard .json files to merge), e.g. evalpipe leaderboard build results/* -o leaderboard.json',
    });
  const sourced: SourcedEntry[] = [];
  const partial: string[] = [];
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
    const run = await readRunData(path);
    await run.verifyRecords(); // figures come from results.json; an edited record still refuses the run
    const facts = entryFacts(run);
    if (facts.status === 'partial') {
      partial.push(`${path} (${facts.missing.join(', ')})`);
      if (!options.allowPartial) continue;
    }
    const entry = entryFromSummary(await summariseRun(run), facts);
    assertValidEntry(entry, { file: path, path: 'entry' });
    sourced.push({ entry, source: path });
  }
  if (partial.length > 0 && !options.allowPartial) {
    throw new DataError(`${partial.length} run${partial.length === 1 ? ' is' : 's are'} not complete: ${partial.join('; ')}`, {
      hint: 'finish them with the same `evalpipe run` command, or pass --allow-partial to add them marked partial',
    });
  }
  const { entries, conflicts } = mergeEntries(sourced);
  const board = await writeLeaderboardFile(out, entries, now);
  return { board, conflicts, partial };
}
