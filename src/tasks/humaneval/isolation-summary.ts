/** What isolated verdicts found in a run's execution records: the suspects and the problems that could not run isolated. */
export interface SuspectSample {
  task_id: string;
  sample_index: number;
  /** The default mode's verdict (always `passed` for a suspect). */
  default_status: string;
  /** The isolated verdict, the one counted. */
  status: string;
  exception_type: string | null;
}

export interface IsolationSummary {
  verdicts: 'isolated';
  /** Samples that pass the default way but fail with the tests in their own process. */
  suspect_count: number;
  suspects: SuspectSample[];
  /** Problems whose tests pass the entry point something that is not plain data: their default verdicts count. */
  unsupported_problems: string[];
}

const byTask = new Intl.Collator('en', { numeric: true });

/** The fields of an execution record (or of `evalpipe execute`'s verdict) that isolation reports read. */
export interface IsolationVerdict {
  task_id: string;
  sample_index: number;
  status: string;
  exception_type?: string | null;
  isolation?: string;
  default_status?: string;
  suspect?: boolean;
}

/** Undefined for a run whose records carry no isolated verdicts (the default mode). Ordered by task, then sample. */
export function summariseIsolation(records: Iterable<IsolationVerdict>): IsolationSummary | undefined {
  const suspects: SuspectSample[] = [];
  const unsupported = new Set<string>();
  let isolated = false;
  for (const record of records) {
    if (record.isolation !== 'checked' && record.isolation !== 'unsupported') continue;
    isolated = true;
    const taskId = record.task_id;
    if (record.isolation === 'unsupported') unsupported.add(taskId);
    if (record.suspect === true) {
      suspects.push({
        task_id: taskId,
        sample_index: record.sample_index,
        default_status: String(record.default_status),
        status: record.status,
        exception_type: record.exception_type ?? null,
      });
    }
  }
  if (!isolated) return undefined;
  suspects.sort((a, b) => byTask.compare(a.task_id, b.task_id) || a.sample_index - b.sample_index);
  return { verdicts: 'isolated', suspect_count: suspects.length, suspects, unsupported_problems: [...unsupported].sort(byTask.compare) };
}
