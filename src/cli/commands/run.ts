import type { CommandModule } from '../command-module.js';
import { runEvaluation } from '../../pipeline/run-pipeline.js';
import { addRunOptions, buildRunConfig, type RawRunOptions } from '../run-options.js';
import { hubOptionsFromEnv } from '../../datasets/hub-options.js';
import { formatResultsTable } from '../results-table.js';
import { setVerbose } from '../../util/log.js';
import { withInterrupt } from '../with-interrupt.js';

export const command: CommandModule = {
  register(cli) {
    return cli.command(
      'run',
      'Run (or resume) an evaluation: perplexity, HumanEval pass@k, latency. The same command resumes an interrupted run.',
      (yargs) =>
        addRunOptions(yargs)
          .example('$0 run --preset smoke', 'tiny random model on built-in texts, CPU, no network')
          .example('$0 run --model bigcode/starcoder2-3b --quant fp8 --attn flash', 'the full evaluation on a GPU'),
      async (argv) => {
        const raw = argv as unknown as RawRunOptions;
        setVerbose(raw.verbose ?? false);
        const { config, settings } = buildRunConfig(raw);
        const results = await withInterrupt((signal) => runEvaluation(config, settings, hubOptionsFromEnv(process.env), signal));
        if (!results) return;
        process.stdout.write(settings.json ? `${JSON.stringify(results)}\n` : `${formatResultsTable(results)}\n`);
      },
    );
  },
};
