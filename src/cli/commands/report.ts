import type { CommandModule } from '../command-module.js';
import { writeRunReports } from '../../pipeline/report/write-reports.js';
import { log } from '../../util/log.js';

export const command: CommandModule = {
  register(cli) {
    return cli.command(
      'report <dirs..>',
      'Write report.md and a self-contained report.html (tables + inline SVG charts) from one or more run directories',
      (yargs) =>
        yargs
          .positional('dirs', { type: 'string', array: true, demandOption: true, describe: 'Run directories to compare' })
          .option('out', {
            alias: 'o',
            type: 'string',
            describe: 'Output directory [default: the run directory when one is given, else the current directory]',
          })
          .example('$0 report results/* -o reports/', 'compare precisions and attention backends across runs'),
      async (argv) => {
        const dirs = (argv.dirs as string[] | undefined) ?? [];
        const out = (argv.out as string | undefined) ?? (dirs.length === 1 ? dirs[0]! : '.');
        const written = await writeRunReports(dirs, out);
        log.info(`report: wrote ${written.markdown} and ${written.html}`);
        process.stdout.write(argv.json ? `${JSON.stringify(written)}\n` : `${written.markdown}\n${written.html}\n`);
      },
    );
  },
};
