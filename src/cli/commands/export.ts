import { writeFile } from 'node:fs/promises';
import type { CommandModule } from '../command-module.js';
import { EXPORT_FORMATS, lmEvalResults } from '../../pipeline/lm-eval-export.js';
import { readRunData } from '../../pipeline/store/run-reader.js';
import { UsageError } from '../../util/errors.js';
import { log } from '../../util/log.js';

/** `evalpipe export --format lm-eval RUN_DIR [-o FILE]`: a scored run's results in another tool's shape. */
export const command: CommandModule = {
  register(cli) {
    return cli.command(
      'export <dir>',
      "Write a scored run's results in lm-evaluation-harness's results JSON shape (results, configs, versions, n-samples, config), from results.json and the manifest",
      (yargs) =>
        yargs
          .positional('dir', { type: 'string', demandOption: true, describe: 'Run directory (results/<run-id>)' })
          .option('format', { type: 'string', default: 'lm-eval', describe: `Output shape: ${EXPORT_FORMATS.join(', ')}` })
          .option('out', { alias: 'o', type: 'string', describe: 'Output file [default: stdout]' })
          .example('$0 export --format lm-eval results/RUN -o results_lm_eval.json', 'lm-eval results JSON of a run'),
      async (argv) => {
        const format = String(argv.format);
        if (!(EXPORT_FORMATS as readonly string[]).includes(format)) {
          throw new UsageError(`unknown --format "${format}"`, { hint: `use one of ${EXPORT_FORMATS.join(', ')}` });
        }
        const run = await readRunData(String(argv.dir));
        const exported = lmEvalResults(run);
        const text = `${JSON.stringify(exported, null, 2)}\n`;
        const out = argv.out as string | undefined;
        if (out === undefined) {
          process.stdout.write(text);
          return;
        }
        await writeFile(out, text);
        log.info(`export: wrote ${Object.keys(exported.results).join(', ') || 'no'} task results to ${out}`);
        process.stdout.write(argv.json ? `${JSON.stringify({ out, format, tasks: Object.keys(exported.results) })}\n` : `${out}\n`);
      },
    );
  },
};
