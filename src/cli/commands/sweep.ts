import type { CommandModule } from '../command-module.js';
import { runSweep } from '../../pipeline/run-sweep.js';
import { setVerbose } from '../../util/log.js';
import { hubOptionsFromEnv } from '../../datasets/hub-options.js';
import { formatResultsTable } from '../results-table.js';
import { addRunOptions } from '../run-options.js';
import { planSweep, type RawSweepOptions } from '../sweep-plan.js';
import { withInterrupt } from '../with-interrupt.js';

export const command: CommandModule = {
  register(cli) {
    return cli.command(
      'sweep',
      "Run (or resume) one evaluation per precision × attention backend with the same options, then one report across them (the study's tables)",
      (yargs) =>
        addRunOptions(yargs)
          .hide('quant')
          .hide('attn')
          .hide('run-dir')
          .option('quants', { type: 'string', describe: 'Comma list of precisions [default: bf16 on GPU, fp32 on CPU]' })
          .option('attns', { type: 'string', describe: 'Comma list of attention backends [default: sdpa]' })
          .option('report-dir', { type: 'string', describe: 'Where the combined report.md/report.html go [default: results/sweep-<hash>]' })
          .example('$0 sweep --model bigcode/starcoder2-3b --quants bf16,int8,nf4,fp8 --attns sdpa,flash --tasks perplexity,latency', 'the study on one GPU')
          .example('$0 sweep --preset smoke --quants fp32,bf16,int8,nf4 --attns sdpa,eager', 'the same on CPU with the tiny model'),
      async (argv) => {
        const raw = argv as unknown as RawSweepOptions;
        setVerbose(raw.verbose ?? false);
        const plan = planSweep(raw);
        const { outcomes, report } = await withInterrupt((signal) =>
          runSweep(plan.items, plan.reportDir, hubOptionsFromEnv(process.env), {
            signal,
            onResults: (item, results) => {
              if (!item.settings.json) process.stdout.write(`${formatResultsTable(results)}\n`);
            },
          }),
        );
        const failed = outcomes.filter((outcome) => outcome.status === 'failed');
        if (raw.json) {
          const runs = outcomes.map(({ label, run_dir, status, error }) => ({ label, run_dir, status, ...(error ? { error } : {}) }));
          process.stdout.write(`${JSON.stringify({ runs, report: report ?? null })}\n`);
        } else {
          const lines = outcomes.map(
            (outcome) => `${outcome.status === 'ok' ? 'ok    ' : 'FAILED'} ${outcome.label.padEnd(12)} ${outcome.error ?? outcome.run_dir}`,
          );
          process.stdout.write(`${lines.join('\n')}\n${report ? `report: ${report.markdown}\n` : ''}`);
        }
        if (failed.length > 0) process.exitCode = 1;
      },
    );
  },
};
