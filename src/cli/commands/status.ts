import type { CommandModule } from '../command-module.js';
import { formatRunStatus, readRunStatus } from '../../pipeline/run-status.js';

export const command: CommandModule = {
  register(cli) {
    return cli.command(
      'status <dirs..>',
      "Show each stage's progress in one or more run directories (done/total units, complete or not); safe while a run is going",
      (yargs) =>
        yargs
          .positional('dirs', { type: 'string', array: true, demandOption: true, describe: 'Run directories (results/<run-id>)' })
          .example('$0 status results/*', 'progress of every run'),
      async (argv) => {
        const dirs = (argv.dirs as string[] | undefined) ?? [];
        const statuses = [];
        for (const dir of dirs) statuses.push(await readRunStatus(dir));
        if (argv.json) {
          process.stdout.write(`${JSON.stringify(statuses.length === 1 ? statuses[0] : statuses)}\n`);
          return;
        }
        process.stdout.write(`${statuses.map(formatRunStatus).join('\n\n')}\n`);
      },
    );
  },
};
