import type { Argv } from 'yargs';
import type { CommandModule } from '../command-module.js';
import { listCachedDatasets } from '../../datasets/cache-listing.js';
import { hubOptionsFromEnv } from '../../datasets/hub-options.js';
import { formatBytes } from '../../datasets/hub-pull.js';
import { DEFAULT_ROWS, loadTextRows, type TextLoadOptions } from '../../datasets/load.js';
import { defaultCacheDir } from '../../datasets/paths.js';
import { listDatasetSpecs } from '../../datasets/specs.js';
import { withInterrupt } from '../with-interrupt.js';

interface SourceFlags {
  source: string;
  rows?: number;
  'text-field'?: string;
  revision?: string;
  split?: string;
  config?: string;
  'skip-empty'?: boolean;
  'cache-dir'?: string;
  json?: boolean;
}

function sourceOptions<T>(yargs: Argv<T>): Argv<T> {
  return yargs
    .positional('source', {
      type: 'string',
      describe: 'Hub data set id (flytech/python-codes-25k), a .jsonl/.jsonl.gz/.parquet/.arrow file, or builtin:smoke',
      demandOption: true,
    })
    .option('rows', { type: 'number', describe: `Take the first N rows [default: ${DEFAULT_ROWS}]` })
    .option('text-field', { type: 'string', describe: 'Column, or a template over columns like "{instruction}\\n{output}" [default: the spec\'s]' })
    .option('revision', { type: 'string', describe: 'Hub branch, tag or commit [default: refs/convert/parquet]' })
    .option('split', { type: 'string', describe: 'Hub split [default: train]' })
    .option('config', { type: 'string', describe: 'Hub config [default: default]' })
    .option('skip-empty', { type: 'boolean', default: false, describe: 'Drop rows whose text is empty instead of failing' })
    .option('cache-dir', { type: 'string', describe: `Data set cache [default: ${defaultCacheDir()}]` }) as Argv<T>;
}

function loadOptions(flags: SourceFlags, signal: AbortSignal): TextLoadOptions {
  const options: TextLoadOptions = { ...hubOptionsFromEnv(process.env), signal, skipEmpty: flags['skip-empty'] ?? false };
  if (flags.rows !== undefined) options.rows = flags.rows;
  if (flags['text-field'] !== undefined) options.textField = flags['text-field'];
  if (flags.revision !== undefined) options.revision = flags.revision;
  if (flags.split !== undefined) options.split = flags.split;
  if (flags.config !== undefined) options.config = flags.config;
  if (flags['cache-dir'] !== undefined) options.cacheDir = flags['cache-dir'];
  return options;
}

export const command: CommandModule = {
  register(cli) {
    return cli.command('datasets <action>', 'Pull, inspect and list data sets (hub ids, local files, builtin:smoke)', (yargs) =>
      yargs
        .command(
          'pull <source>',
          'Fetch a data set into the cache (or read a local file) and print its revision, files, sizes and hashes',
          (y) => sourceOptions(y).example('$0 datasets pull flytech/python-codes-25k --rows 512', 'cache the first parquet file of the train split'),
          async (argv) => {
            const flags = argv as unknown as SourceFlags;
            const loaded = await withInterrupt((signal) => loadTextRows(flags.source, loadOptions(flags, signal)));
            const p = loaded.provenance;
            const chars = loaded.texts.reduce((sum, row) => sum + row.text.length, 0);
            const summary = {
              source: p.source,
              id: p.id,
              revision: p.revision ?? null,
              files: p.files,
              rows: p.rowCount,
              texts: loaded.texts.length,
              skipped_empty: loaded.skippedEmpty,
              text_field: loaded.textField,
              text_chars: chars,
              content_sha256: p.contentSha256,
            };
            if (flags.json) {
              process.stdout.write(`${JSON.stringify(summary)}\n`);
              return;
            }
            const lines = [
              `${p.source} ${p.id}${p.revision ? ` @ ${p.revision}` : ''}`,
              ...p.files.map((file) => `  ${file.path}  ${formatBytes(file.bytes)}  sha256 ${file.sha256}`),
              `rows ${p.rowCount}, texts ${loaded.texts.length}${loaded.skippedEmpty.length ? ` (${loaded.skippedEmpty.length} empty skipped)` : ''}, text field ${JSON.stringify(loaded.textField)}, ${chars} characters`,
              `content sha256 ${p.contentSha256}`,
            ];
            process.stdout.write(`${lines.join('\n')}\n`);
          },
        )
        .command(
          'show <source>',
          'Print the first texts of a data set as the perplexity stage would score them',
          (y) => sourceOptions(y).option('rows', { type: 'number', default: 3, describe: 'How many rows to print' }),
          async (argv) => {
            const flags = argv as unknown as SourceFlags;
            const loaded = await withInterrupt((signal) => loadTextRows(flags.source, loadOptions(flags, signal)));
            if (flags.json) {
              process.stdout.write(`${JSON.stringify({ text_field: loaded.textField, texts: loaded.texts })}\n`);
              return;
            }
            for (const row of loaded.texts) {
              process.stdout.write(`--- row ${row.index} (${row.text.length} characters) ---\n${row.text}${row.text.endsWith('\n') ? '' : '\n'}`);
            }
          },
        )
        .command(
          'list',
          'List the data-set specs (datasets/*.json) and what the cache holds',
          (y) => y.option('cache-dir', { type: 'string', describe: `Data set cache [default: ${defaultCacheDir()}]` }),
          async (argv) => {
            const flags = argv as unknown as { 'cache-dir'?: string; json?: boolean };
            const specs = await listDatasetSpecs();
            const cached = await listCachedDatasets(flags['cache-dir'] ?? defaultCacheDir());
            if (flags.json) {
              process.stdout.write(`${JSON.stringify({ specs, cached })}\n`);
              return;
            }
            const lines = ['specs:'];
            for (const spec of specs) {
              lines.push(`  ${spec.id}  revision ${spec.revision}  ${spec.config}/${spec.split}  text field ${JSON.stringify(spec.textField)}`);
            }
            lines.push('cached:');
            if (cached.length === 0) lines.push('  (nothing)');
            for (const record of cached) {
              lines.push(`  ${record.repo} @ ${record.revision} (${record.requested_revisions.join(', ') || 'pinned sha'})`);
              for (const file of record.files) lines.push(`    ${file.path}  ${formatBytes(file.bytes)}  sha256 ${file.sha256}  ${file.downloaded_at}`);
            }
            process.stdout.write(`${lines.join('\n')}\n`);
          },
        )
        .demandCommand(1, 'Name a datasets action: pull, show or list.'),
    );
  },
};
