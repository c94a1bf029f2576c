import type { HubOptions } from '../datasets/hub-options.js';
import { isEvalpipeError } from '../util/errors.js';
import { log, withLogPrefix } from '../util/log.js';
import { writeRunReports } from './report/write-reports.js';
import type { RunConfig, RunSettings } from './run-config.js';
import { runEvaluation } from './run-pipeline.js';
import type { RunResults } from './store/results.js';
import { type DeviceSlot, deviceSlots } from './sweep-placement.js';

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
 * Run (or resume) every item, then one report across the ones that finished. Without --devices (or with one entry)
 * the items run one after another, each on all of --devices; with several entries they run side by side, each on
 * its own slot of the entries (sweep-placement.ts), the items waiting in one queue in their order and each slot
 * taking the next when it is free. Either way each item is the same run (its own directory, named by its config),
 * its log lines are prefixed with its label when others run beside it, the outcomes and `onResults` come in the
 * items' order, and the report covers the finished runs in that order. One item failing (fp8 on a card without
 * fp8, an OOM at load) does not stop the others: its slot takes the next item; an interrupt stops every one.
 */
export async function runSweep(
  items: readonly SweepItem[],
  reportDir: string,
  hub: HubOptions,
  options: { signal: AbortSignal; onResults?: (item: SweepItem, results: RunResults) => void },
): Promise<{ outcomes: SweepOutcome[]; report: { markdown: string; html: string } | undefined }> {
  const slots = deviceSlots(items[0]?.settings.devices, items.length);
  if (slots) log.info(`sweep: ${items.length} configurations side by side on ${slots.map((slot) => slot.labels.join('+')).join(', ')}`);
  const outcomes: (SweepOutcome | undefined)[] = items.map(() => undefined);
  let reported = 0;
  /** onResults in the items' order: each finished item's results once every item before it has its outcome. */
  const reportInOrder = () => {
    while (reported < items.length && outcomes[reported] !== undefined) {
      const outcome = outcomes[reported]!;
      if (outcome.status === 'ok' && outcome.results) options.onResults?.(items[reported]!, outcome.results);
      reported += 1;
    }
  };
  const runItem = async (index: number, slot: DeviceSlot | undefined): Promise<void> => {
    const item = items[index]!;
    log.info(`sweep ${index + 1}/${items.length}: ${item.label}${slot ? ` on ${slot.labels.join('+')}` : ''}`);
    const settings = slot ? { ...item.settings, devices: slot.devices, engineLabels: slot.labels } : item.settings;
    try {
      const results = await runEvaluation(item.config, settings, hub, options.signal);
      outcomes[index] = results
        ? { label: item.label, run_dir: item.runDir, status: 'ok', results }
        : { label: item.label, run_dir: item.runDir, status: 'ok' };
    } catch (error) {
      if (options.signal.aborted) throw error;
      log.warn(`sweep: ${item.label} failed: ${describe(error)}`);
      outcomes[index] = { label: item.label, run_dir: item.runDir, status: 'failed', error: describe(error) };
    }
    reportInOrder();
  };
  let next = 0;
  const worker = async (slot: DeviceSlot | undefined): Promise<void> => {
    while (next < items.length) {
      options.signal.throwIfAborted();
      const index = next;
      next += 1;
      if (slot) await withLogPrefix(`[${items[index]!.label}] `, () => runItem(index, slot));
      else await runItem(index, slot);
    }
  };
  const settled = await Promise.allSettled((slots ?? [undefined]).map((slot) => worker(slot)));
  const interrupted = settled.find((outcome) => outcome.status === 'rejected');
  if (interrupted) throw interrupted.reason;
  // an item whose stages stopped short of score (--stages without it) has no results: it is neither ok nor failed here
  const done = outcomes.filter((outcome): outcome is SweepOutcome => outcome !== undefined && (outcome.status === 'failed' || outcome.results !== undefined));
  const finished = done.filter((outcome) => outcome.status === 'ok');
  const report =
    finished.length > 0
      ? await writeRunReports(
          finished.map((outcome) => outcome.run_dir),
          reportDir,
        )
      : undefined;
  if (report) log.info(`sweep report: ${report.markdown}, ${report.html}`);
  return { outcomes: done, report };
}
