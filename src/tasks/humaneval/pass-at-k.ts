import { meanEstimate, type Estimate } from '../../pipeline/statistics.js';
import { exactSum } from '../../util/exact-sum.js';

/** The k values we report, each only where every problem has at least k scored samples. */
export const PASS_AT_K_VALUES = [1, 10, 100] as const;

/**
 * Unbiased pass@k for one problem with n samples of which c passed (Chen et al. 2021):
 * 1 - C(n-c, k) / C(n, k), computed as 1 - prod_{i=n-c+1}^{n} (1 - k/i) so no binomial ever overflows.
 */
export function passAtK(n: number, c: number, k: number): number {
  if (!Number.isInteger(n) || !Number.isInteger(c) || !Number.isInteger(k) || n < 0 || c < 0 || c > n || k < 1) {
    throw new RangeError(`pass@k needs integers 0 <= c <= n and k >= 1, got n=${n}, c=${c}, k=${k}`);
  }
  if (k > n) throw new RangeError(`pass@${k} needs at least ${k} samples, got n=${n}`);
  if (n - c < k) return 1;
  if (k === 1) return c / n; // the product below telescopes to 1 - (n-c)/n; this form is exact
  let product = 1;
  for (let i = n - c + 1; i <= n; i += 1) product *= 1 - k / i;
  return 1 - product;
}

export interface ProblemCounts {
  taskId: string;
  /** Samples that count (sandbox errors excluded: they say nothing about the model). */
  n: number;
  /** Of those, how many passed. */
  c: number;
}

export interface ProblemScore extends ProblemCounts {
  passAtK: Record<string, number>;
}

export interface PassAtKSummary {
  /** `pass@1`, `pass@10`, `pass@100`: the mean over problems, for each k every problem supports. */
  passAtK: Record<string, number>;
  /** The k values left out, with the reason (the smallest n). */
  omitted: { k: number; reason: string }[];
  problems: ProblemScore[];
}

/** Score every problem and average: k in {1, 10, 100} only where min(n) >= k. */
export function scorePassAtK(counts: readonly ProblemCounts[], ks: readonly number[] = PASS_AT_K_VALUES): PassAtKSummary {
  if (counts.length === 0) return { passAtK: {}, omitted: ks.map((k) => ({ k, reason: 'no problems were scored' })), problems: [] };
  const minN = Math.min(...counts.map((problem) => problem.n));
  const usable = ks.filter((k) => k <= minN);
  const omitted = ks.filter((k) => k > minN).map((k) => ({ k, reason: `some problem has only ${minN} scored sample${minN === 1 ? '' : 's'}` }));
  const problems = counts.map((problem) => ({
    ...problem,
    passAtK: Object.fromEntries(usable.map((k) => [`pass@${k}`, passAtK(problem.n, problem.c, k)])),
  }));
  const passAtKMean = Object.fromEntries(
    usable.map((k) => [`pass@${k}`, exactSum(problems.map((problem) => problem.passAtK[`pass@${k}`] ?? 0)) / problems.length]),
  );
  return { passAtK: passAtKMean, omitted, problems };
}

/**
 * Mean pass@k over problems (those with n ≥ k; the unbiased estimator above) and its standard error across
 * problems: sd(pass@k_i) / √P. With one sample per problem this is the binomial s.e. √(p(1−p)/(P−1)).
 */
export function passAtKEstimate(problems: readonly { n: number; c: number }[], k: number): Estimate {
  const values = problems.filter((problem) => problem.n >= k).map((problem) => passAtK(problem.n, problem.c, k));
  return meanEstimate(values);
}
