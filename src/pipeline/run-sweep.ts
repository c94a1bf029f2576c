import type { HubOptions } from '../datasets/hub-options.js';
import { isEvalpipeError } from '../util/errors.js';
import { log } from '../util/log.js';
import { writeRunReports } from './report/write-reports.js';
import type { RunConfig, RunSettings } from './run-config.js';
import { runEvaluation } from './run-pipeline.js';
import type { RunResults } from './store/results.js';

/** One evaluation of a sweep: a precision × attention combination of otherwise identical run options. */
export interface SweepItem {
  label: string;
  config: RunConfig;
  settings: RunSettings;
  runDir: string;
}

export interface SweepOutcome {
  label: string;
  run_dir: string;
  status: 'ok' | 'failed';
  error?: string;
  results?: RunResults;
}

function describe(error: unknown): string {
  if (isEvalpipeError(error)) return error.toUserLine();
  return error instanceof Error ? error.message : String(error);
}

/**
 * Run (or resume) every item in turn, then one report across the ones that finished. One combination failing
 * (fp8 on a card without fp8, an OOM at load) does not stop the others; an interrupt does.
 */
export async function runSweep(
  items: readonly SweepItem[],
  reportDir: string,
  hub: HubOptions,
  options: { signal: AbortSignal; onResults?: (item: SweepItem, results: RunResults) => void },
): Promise<{ outcomes: SweepOutcome[]; report: { markdown: string; html: string } | undefined }> {
  const outcomes: SweepOutcome[] = [];
  for (const [index, item] of items.entries()) {
    options.signal.throwIfAborted();
    log.info(`sweep ${index + 1}/${items.length}: ${item.label}`);
    try {
      const results = await runEvaluation(item.config, item.settings, hub, options.signal);
      if (results) {
        outcomes.push({ label: item.label, run_dir: item.runDir, status: 'ok', results });
        options.onResults?.(item, results);
      }
    } catch (error) {
      if (options.signal.aborted) throw error;
      log.warn(`sweep: ${item.label} failed: ${describe(error)}`);
      outcomes.push({ label: item.label, run_dir: item.runDir, status: 'failed', error: describe(error) });
    }
  }
  const finished = outcomes.filter((outcome) => outcome.status === 'ok');
  const report =
    finished.length > 0
      ? await writeRunReports(
          finished.map((outcome) => outcome.run_dir),
          reportDir,
        )
      : undefined;
  if (report) log.info(`sweep report: ${report.markdown}, ${report.html}`);
  return { outcomes, report };
}
