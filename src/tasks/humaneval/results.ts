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
  };
}
