import type { CommandModule } from '../command-module.js';
import { runPlanCommand } from '../run-plan-command.js';
import type { RawPlanOptions } from '../run-plan.js';
import { addRunOptions } from '../run-options.js';

export const command: CommandModule = {
  register(cli) {
    return cli.command(
      'run',
      'Run (or resume) an evaluation: perplexity, HumanEval pass@k, latency. The same command resumes an interrupted run. Comma lists in --quant/--attn run every combination, then one joint report.',
      (yargs) =>
        addRunOptions(yargs)
          .option('report-dir', {
            type: 'string',
            describe: 'With several --quant/--attn values: where the joint report goes [default: <results-dir>/sweep-<hash>]',
          })
          .example('$0 run --preset smoke', 'tiny random model on built-in texts, CPU, no network')
          .example('$0 run --model bigcode/starcoder2-3b --quant fp8 --attn flash', 'the full evaluation on a GPU')
          .example('$0 run --model bigcode/starcoder2-3b --quant bf16,int8,nf4,fp8 --tasks perplexity,latency', 'every precision, then one report'),
      (argv) => runPlanCommand(argv as unknown as RawPlanOptions, { jointReport: false }),
    );
  },
};
