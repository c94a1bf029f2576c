import { canonicalJson } from '../util/canonical-json.js';
import { entryKey, type LeaderboardEntry } from './entry.js';

export interface MergeConflict {
  key: string;
  kept: { run: string; date: string; source: string };
  dropped: { run: string; date: string; source: string };
  /** Whether the two entries' metrics differ (same run read twice is not a real conflict). */
  metricsDiffer: boolean;
  /** The dropped entry covered less (partial, a subset, fewer tasks): kept out whatever its date. */
  coveredLess: boolean;
}

export interface SourcedEntry {
  entry: LeaderboardEntry;
  /** Where it came from (run directory or leaderboard file), for messages. */
  source: string;
}

/**
 * How much an entry covers, compared field by field: a complete run beats a partial one, the whole benchmark
 * beats a subset, more tasks with figures beat fewer. A later run replaces an earlier one only when it covers
 * at least as much, so a partial, subset or single-task run never replaces a complete one.
 */
export function coverage(entry: LeaderboardEntry): number[] {
  const sections = [entry.metrics.perplexity, entry.metrics.humaneval, entry.latency.length > 0 ? entry.latency : null];
  return [entry.status === 'complete' ? 1 : 0, entry.subset.is_subset ? 0 : 1, sections.filter((section) => section !== null).length];
}

function compareCoverage(a: LeaderboardEntry, b: LeaderboardEntry): number {
  const [x, y] = [coverage(a), coverage(b)];
  for (let i = 0; i < x.length; i += 1) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return 0;
}

/**
 * Merge entries: one per key (model, revision, quant, attention, compute dtype). The entry that covers more wins
 * (`coverage`); between equals the later run (by date), a tie going to the entry given later. Returns the merged
 * entries in a stable order and every conflict seen.
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
    const covers = compareCoverage(candidate.entry, previous.entry);
    const candidateWins = covers > 0 || (covers === 0 && candidate.entry.date >= previous.entry.date);
    const [winner, loser] = candidateWins ? [candidate, previous] : [previous, candidate];
    kept.set(key, winner);
    conflicts.push({
      key,
      kept: { run: winner.entry.run.id, date: winner.entry.date, source: winner.source },
      dropped: { run: loser.entry.run.id, date: loser.entry.date, source: loser.source },
      coveredLess: compareCoverage(loser.entry, winner.entry) < 0,
      metricsDiffer:
        canonicalJson(winner.entry.metrics) !== canonicalJson(loser.entry.metrics) ||
        canonicalJson(winner.entry.latency) !== canonicalJson(loser.entry.latency),
    });
  }
  const merged = [...kept.values()].map((item) => item.entry).sort((a, b) => entryKey(a).localeCompare(entryKey(b)));
  return { entries: merged, conflicts };
}

export function formatConflict(conflict: MergeConflict): string {
  return `leaderboard conflict for ${conflict.key}: kept run ${conflict.kept.run} (${conflict.kept.date}, ${conflict.kept.source}) over run ${conflict.dropped.run} (${conflict.dropped.date}, ${conflict.dropped.source})${conflict.metricsDiffer ? '; their metrics differ' : ''}${conflict.coveredLess ? '; the dropped one covers less (partial, a subset or fewer tasks)' : ''}`;
}
