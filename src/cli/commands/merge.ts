import type { CommandModule } from '../command-module.js';
import { hubOptionsFromEnv } from '../../datasets/hub-options.js';
import { mergeShards } from '../../pipeline/merge/merge-shards.js';
import { UsageError } from '../../util/errors.js';
import { log, setVerbose } from '../../util/log.js';
import { formatResultsTable } from '../results-table.js';
import { withInterrupt } from '../with-interrupt.js';

export const command: CommandModule = {
  register(cli) {
    return cli.command(
      'merge <dirs..>',
      "Merge the run directories of `run --shard 1/N` ... `N/N` into one run directory (records, results.json, report) equal to a single machine's run; refuses shards whose manifests disagree (naming the field), overlap or leave units out",
      (yargs) =>
        yargs
          .positional('dirs', { type: 'string', array: true, demandOption: true, describe: "The shards' run directories" })
          .option('out', { type: 'string', describe: 'The merged run directory (new or empty)' })
          .example('$0 merge results/*-shard*of3 --out results/merged', 'three shards into one run'),
      async (argv) => {
        setVerbose(Boolean(argv.verbose));
        const dirs = (argv.dirs as string[] | undefined) ?? [];
        const out = argv.out as string | undefined;
        if (out === undefined || out.trim() === '')
          throw new UsageError('merge needs --out DIR: where the merged run directory goes', { hint: 'evalpipe merge DIR... --out DIR' });
        const merged = await withInterrupt((signal) => mergeShards(dirs, out, hubOptionsFromEnv(process.env), signal));
        if (merged.results) {
          process.stdout.write(argv.json ? `${JSON.stringify(merged.results)}\n` : `${formatResultsTable(merged.results)}\n`);
          return;
        }
        const stages = [...merged.missingStages, 'score', 'report'].join(',');
        log.warn(`merge: no shard ran the ${merged.missingStages.join(', ')} stage(s): the merged records are in ${out}, not yet scored`);
        process.stdout.write(
          argv.json
            ? `${JSON.stringify({ run_dir: out, missing_stages: merged.missingStages })}\n`
            : `merged into ${out}; finish it with: evalpipe run <the shards' options without --shard> --run-dir ${out} --stages ${stages}\n`,
        );
      },
    );
  },
};
