import type { CommandModule } from '../command-module.js';
import { buildLeaderboard } from '../../leaderboard/build.js';
import { formatConflict } from '../../leaderboard/merge.js';
import { log } from '../../util/log.js';

export const command: CommandModule = {
  register(cli) {
    return cli.command('leaderboard <action>', 'Build leaderboard JSON (schemas/leaderboard-entry.schema.json) from run directories', (yargs) =>
      yargs
        .command(
          'build <inputs..>',
          'One entry per run directory, merged with any leaderboard .json given (a later run wins per model, revision, quant, attention, compute dtype; conflicts on stderr)',
          (y) =>
            y
              .positional('inputs', { type: 'string', array: true, demandOption: true, describe: 'Run directories and/or leaderboard .json files' })
              .option('out', { alias: 'o', type: 'string', default: 'leaderboard.json', describe: 'Output file' })
              .option('allow-partial', {
                type: 'boolean',
                default: false,
                describe:
                  "Add runs that are not scored or lack a task's figures, marked partial (they never replace a complete entry) instead of refusing them",
              })
              .example('$0 leaderboard build results/* -o leaderboard.json', 'every run, one entry per configuration'),
          async (argv) => {
            const inputs = (argv.inputs as string[] | undefined) ?? [];
            const out = argv.out as string;
            const allowPartial = argv['allow-partial'] === true;
            const { board, conflicts, partial } = await buildLeaderboard(inputs, out, new Date(), { allowPartial });
            for (const run of partial) log.warn(`leaderboard: added ${run} marked partial`);
            for (const conflict of conflicts) log.warn(formatConflict(conflict));
            log.info(`leaderboard: wrote ${board.entries.length} entr${board.entries.length === 1 ? 'y' : 'ies'} to ${out}`);
            process.stdout.write(argv.json ? `${JSON.stringify({ out, entries: board.entries.length, conflicts: conflicts.length })}\n` : `${out}\n`);
          },
        )
        .demandCommand(1, 'Name a leaderboard action: build.'),
    );
  },
};
