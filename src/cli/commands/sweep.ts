import type { CommandModule } from '../command-module.js';
import { runPlanCommand } from '../run-plan-command.js';
import type { RawPlanOptions } from '../run-plan.js';
import { addRunOptions } from '../run-options.js';

export const command: CommandModule = {
  register(cli) {
    return cli.command(
      'sweep',
      "Run (or resume) one evaluation per precision × attention backend (--quant and --attn comma lists, as for run) with the same options, then one report across them (the study's tables), even for one",
      (yargs) =>
        addRunOptions(yargs)
          .option('report-dir', { type: 'string', describe: 'Where the joint report.md/report.html go [default: <results-dir>/sweep-<hash>]' })
          .example('$0 sweep --model bigcode/starcoder2-3b --quant bf16,int8,nf4,fp8 --attn sdpa,flash --tasks perplexity,latency', 'the study on one GPU')
          .example('$0 sweep --preset smoke --quant fp32,bf16,int8,nf4 --attn sdpa,eager', 'the same on CPU with the tiny model'),
      (argv) => runPlanCommand(argv as unknown as RawPlanOptions, { jointReport: true }),
    );
  },
};
