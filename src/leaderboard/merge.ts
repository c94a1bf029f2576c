import { canonicalJson } from '../util/canonical-json.js';
import { entryKey, type LeaderboardEntry } from './entry.js';

export interface MergeConflict {
  key: string;
  kept: { run: string; date: string; source: string };
  dropped: { run: string; date: string; source: string };
  /** Whether the two entries' metrics differ (same run read twice is not a real conflict). */
  metricsDiffer: boolean;
}

export interface SourcedEntry {
  entry: LeaderboardEntry;
  /** Where it came from (run directory or leaderboard file), for messages. */
  source: string;
}

/**
 * Merge entries: one per key (model, revision, quant, attention, compute dtype); the later run (by date) wins,
 * a tie goes to the entry given later. Returns the merged entries in a stable order and every conflict seen.
 */
export function mergeEntries(entries: readonly SourcedEntry[]): { entries: LeaderboardEntry[]; conflicts: MergeConflict[] } {
  const kept = new Map<string, SourcedEntry>();
  const conflicts: MergeConflict[] = [];
  for (const candidate of entries) {
    const key = entryKey(candidate.entry);
    const previous = kept.get(key);
    if (!previous) {
      kept.set(key, candidate);
      continue;
    }
    if (
      previous.entry.run.config_hash === candidate.entry.run.config_hash &&
      previous.entry.run.id === candidate.entry.run.id &&
      canonicalJson(previous.entry) === canonicalJson(candidate.entry)
    ) {
      continue; // the same run twice
    }
    const candidateWins = candidate.entry.date >= previous.entry.date;
    const [winner, loser] = candidateWins ? [candidate, previous] : [previous, candidate];
    kept.set(key, winner);
    conflicts.push({
      key,
      kept: { run: winner.entry.run.id, date: winner.entry.date, source: winner.source },
      dropped: { run: loser.entry.run.id, date: loser.entry.date, source: loser.source },
      metricsDiffer:
        canonicalJson(winner.entry.metrics) !== canonicalJson(loser.entry.metrics) ||
        canonicalJson(winner.entry.latency) !== canonicalJson(loser.entry.latency),
    });
  }
  const merged = [...kept.values()].map((item) => item.entry).sort((a, b) => entryKey(a).localeCompare(entryKey(b)));
  return { entries: merged, conflicts };
}

export function formatConflict(conflict: MergeConflict): string {
  return `leaderboard conflict for ${conflict.key}: kept run ${conflict.kept.run} (${conflict.kept.date}, ${conflict.kept.source}) over run ${conflict.dropped.run} (${conflict.dropped.date}, ${conflict.dropped.source})${conflict.metricsDiffer ? '; their metrics differ' : ''}`;
}
