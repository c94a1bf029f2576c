/**
 * The stages' scheduler: the units (a stage's fixed requests) in one queue, taken in order by `workers` loops, each
 * taking the next unit when it is free, so with an engine pool each engine serves the next request as soon as it
 * is done with one. With one worker this is the plain loop it replaces. After the first failure no new unit starts;
 * the units in flight finish (their records are kept) and the first error is thrown.
 */
export async function forEachInQueue<T>(units: readonly T[], workers: number, work: (unit: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (failure === undefined && next < units.length) {
      const unit = units[next]!;
      next += 1;
      try {
        await work(unit);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(workers, units.length)) }, () => worker()));
  if (failure) throw failure.error;
}
