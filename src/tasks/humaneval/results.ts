import { estimateToJson, type EstimateJson } from '../../pipeline/statistics.js';
import { summariseIsolation, type IsolationSummary } from './isolation-summary.js';
import { passAtKEstimate, scorePassAtK, type PassAtKSummary, type ProblemCounts } from './pass-at-k.js';
import type { ExecutionRecord } from './records.js';

/** results.json `humaneval`. */
export interface HumanEvalResults {
  pass_at_k: Record<string, number>;
  omitted_k: PassAtKSummary['omitted'];
  n_problems: number;
  n_samples_per_problem: number;
  status_counts: Record<string, number>;
  per_problem: { task_id: string; n: number; c: number; pass_at_k: Record<string, number> }[];
  /** pass@k for every k the samples allow, with its standard error over problems. */
  estimates: Record<string, EstimateJson>;
  /** Only with --verdicts isolated: the suspects and the problems that could not run isolated. */
  isolation?: IsolationSummary;
  /** The problems scored of the data set's (--limit): `is_subset` when fewer. */
  subset?: { problems: number; of: number; limit: number | null; is_subset: boolean };
  /**
   * Why candidates did not pass: the most frequent failure kinds (status, with the exception type where there is
   * one: "failed: SyntaxError", "timeout", "oom"), count descending then kind, each with its first example in
   * data-set order. Absent from results.json written before it existed.
   */
  failure_types?: FailureType[];
}

/** One kind of failure in results.json `humaneval.failure_types`. */
export interface FailureType {
  kind: string;
  count: number;
  /** The first sample of this kind (problems in data-set order, then sample index). */
  example: { task_id: string; sample_index: number; message: string | null };
}

/** How many failure kinds results.json keeps (the rest are in status_counts). */
export const MAX_FAILURE_TYPES = 10;
/** Characters kept of an example's message (its first line). */
export const FAILURE_MESSAGE_CHARS = 160;

/** A record's failure kind: its status, with the exception type where there is one; null for a pass. */
export function failureKind(record: Pick<ExecutionRecord, 'status' | 'exception_type'>): string | null {
  if (record.status === 'passed') return null;
  return record.exception_type ? `${record.status}: ${record.exception_type}` : record.status;
}

/** The first non-empty line of a message, at most FAILURE_MESSAGE_CHARS characters (cut with an ellipsis). */
export function firstLine(message: string | null | undefined): string | null {
  const line = (message ?? '')
    .split('\n')
    .map((each) => each.trim())
    .find((each) => each.length > 0);
  if (!line) return null;
  const chars = [...line];
  return chars.length > FAILURE_MESSAGE_CHARS ? `${chars.slice(0, FAILURE_MESSAGE_CHARS - 1).join('')}…` : line;
}

/** The top failure kinds with a count and one example each, in a fixed order whatever the records' order. */
export function failureTypes(taskIds: readonly string[], records: Iterable<ExecutionRecord>, limit = MAX_FAILURE_TYPES): FailureType[] {
  const position = new Map(taskIds.map((taskId, index) => [taskId, index]));
  const rank = (record: ExecutionRecord): [number, string, number] => [position.get(record.task_id) ?? taskIds.length, record.task_id, record.sample_index];
  const before = (a: ExecutionRecord, b: ExecutionRecord): boolean => {
    const [ap, at, as] = rank(a);
    const [bp, bt, bs] = rank(b);
    return ap !== bp ? ap < bp : at !== bt ? at < bt : as < bs;
  };
  const kinds = new Map<string, { count: number; first: ExecutionRecord }>();
  for (const record of records) {
    const kind = failureKind(record);
    if (kind === null) continue;
    const entry = kinds.get(kind);
    if (!entry) kinds.set(kind, { count: 1, first: record });
    else {
      entry.count += 1;
      if (before(record, entry.first)) entry.first = record;
    }
  }
  return [...kinds.entries()]
    .sort(([ak, a], [bk, b]) => b.count - a.count || (ak < bk ? -1 : ak > bk ? 1 : 0))
    .slice(0, limit)
    .map(([kind, { count, first }]) => ({
      kind,
      count,
      example: { task_id: first.task_id, sample_index: first.sample_index, message: firstLine(first.message) },
    }));
}

/** A verdict as pass counting sees it: a sandbox error says nothing about the model and is never counted. */
export interface CountedVerdict {
  task_id: string;
  passed: boolean;
  status: string;
}

/**
 * Samples and passes per problem, in `taskIds` order (the data set's), over the problems that have verdicts. The
 * one pass counter: the score stage and `evalpipe execute` both count with it.
 */
export function countPasses(taskIds: readonly string[], verdicts: Iterable<CountedVerdict>): ProblemCounts[] {
  const counts = new Map<string, ProblemCounts>(taskIds.map((taskId) => [taskId, { taskId, n: 0, c: 0 }]));
  const seen = new Set<string>();
  for (const verdict of verdicts) {
    const entry = counts.get(verdict.task_id);
    if (!entry) continue;
    seen.add(verdict.task_id);
    if (verdict.status === 'sandbox_error') continue;
    entry.n += 1;
    if (verdict.passed) entry.c += 1;
  }
  return [...counts.values()].filter((entry) => seen.has(entry.taskId));
}

/** The humaneval section from every sample's execution record, problems in data-set order. */
export function humanEvalResults(taskIds: readonly string[], samplesPerProblem: number, records: readonly ExecutionRecord[]): HumanEvalResults {
  const statusCounts: Record<string, number> = {};
  for (const record of records) statusCounts[record.status] = (statusCounts[record.status] ?? 0) + 1;
  const counts = countPasses(taskIds, records);
  const scored = scorePassAtK(counts);
  const isolation = summariseIsolation(records);
  const ks = [1, 10, 100].filter((k) => k <= samplesPerProblem);
  return {
    pass_at_k: scored.passAtK,
    omitted_k: scored.omitted,
    n_problems: taskIds.length,
    n_samples_per_problem: samplesPerProblem,
    status_counts: statusCounts,
    per_problem: scored.problems.map((problem) => ({ task_id: problem.taskId, n: problem.n, c: problem.c, pass_at_k: problem.passAtK })),
    estimates: Object.fromEntries(ks.map((k) => [`pass@${k}`, estimateToJson(passAtKEstimate(counts, k))])),
    ...(isolation ? { isolation } : {}),
    failure_types: failureTypes(taskIds, records),
  };
}
