import { hubOptionsFromEnv } from '../datasets/hub-options.js';
import { runEvaluation } from '../pipeline/run-pipeline.js';
import { runSweep } from '../pipeline/run-sweep.js';
import { setVerbose } from '../util/log.js';
import { formatResultsTable } from './results-table.js';
import { planRuns, type RawPlanOptions } from './run-plan.js';
import { withInterrupt } from './with-interrupt.js';

/**
 * What `run` and `sweep` do with their flags: one run when --quant and --attn name one value each (and `run`
 * was asked), else every combination in turn and one joint report (the study's tables). Prints results on stdout.
 */
export async function runPlanCommand(raw: RawPlanOptions, options: { jointReport: boolean }): Promise<void> {
  setVerbose(raw.verbose ?? false);
  const plan = planRuns(raw);
  const hub = hubOptionsFromEnv(process.env);
  if (plan.items.length === 1 && !options.jointReport) {
    const [{ config, settings }] = plan.items as [(typeof plan.items)[number]];
    const results = await withInterrupt((signal) => runEvaluation(config, settings, hub, signal));
    if (results) process.stdout.write(settings.json ? `${JSON.stringify(results)}\n` : `${formatResultsTable(results)}\n`);
    return;
  }
  const { outcomes, report } = await withInterrupt((signal) =>
    runSweep(plan.items, plan.reportDir, hub, {
      signal,
      onResults: (item, results) => {
        if (!item.settings.json) process.stdout.write(`${formatResultsTable(results)}\n`);
      },
    }),
  );
  if (raw.json) {
    const runs = outcomes.map(({ label, run_dir, status, error }) => ({ label, run_dir, status, ...(error ? { error } : {}) }));
    process.stdout.write(`${JSON.stringify({ runs, report: report ?? null })}\n`);
  } else {
    const lines = outcomes.map((outcome) => `${outcome.status === 'ok' ? 'ok    ' : 'FAILED'} ${outcome.label.padEnd(12)} ${outcome.error ?? outcome.run_dir}`);
    process.stdout.write(`${lines.join('\n')}\n${report ? `report: ${report.markdown}\n` : ''}`);
  }
  if (outcomes.some((outcome) => outcome.status === 'failed')) process.exitCode = 1;
}
