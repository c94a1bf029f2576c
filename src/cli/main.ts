import yargs, { type Argv } from 'yargs';
import { InterruptedError, UsageError, isEvalpipeError } from '../util/errors.js';

/** The exit status for every bad value, flag or argument (yargs' own usage errors exit the same). */
const EXIT_BAD_INPUT = 2;
import { loadCommands } from './commands/index.js';
import { log } from '../util/log.js';

/**
 * Parse argv, run one command, and return the exit code.
 * Nothing here calls process.exit(): the caller sets process.exitCode, so open handles close cleanly.
 */
export async function main(argv: string[]): Promise<number> {
  const verbose = argv.includes('--verbose');
  try {
    let cli: Argv = yargs(argv)
      .scriptName('evalpipe')
      .usage('$0 <command> [options]\n\nEvaluate a code LLM: perplexity, HumanEval pass@k (Docker sandbox), latency and memory.')
      .option('verbose', { type: 'boolean', default: false, describe: 'Print stack traces and debug logs on stderr' })
      .option('json', { type: 'boolean', default: false, describe: 'Print only a machine-readable JSON summary on stdout' })
      .strict()
      .demandCommand(1, 'Name a command: see `evalpipe --help`.')
      .recommendCommands()
      .help()
      .alias('h', 'help')
      .wrap(Math.min(110, process.stdout.columns || 110))
      .fail((message, error) => {
        if (error) throw error;
        throw new CliUsageError(message);
      });
    for (const command of await loadCommands()) cli = command.register(cli);
    await cli.parseAsync();
    return process.exitCode === undefined ? 0 : Number(process.exitCode);
  } catch (error) {
    if (error instanceof CliUsageError) {
      process.stderr.write(`evalpipe: ${error.message}\nRun \`evalpipe --help\` for the options.\n`);
      return EXIT_BAD_INPUT;
    }
    if (isEvalpipeError(error)) {
      process.stderr.write(`evalpipe: ${error.toUserLine()}\n`);
      if (verbose) process.stderr.write(`${formatCauseChain(error)}\n`);
      if (error instanceof InterruptedError) return error.exitCode;
      return error instanceof UsageError ? EXIT_BAD_INPUT : 1; // a bad value, flag or file name: 2, as yargs' own
    }
    process.stderr.write(`evalpipe: internal error: ${error instanceof Error ? error.message : String(error)}\n`);
    if (verbose && error instanceof Error) process.stderr.write(`${formatCauseChain(error)}\n`);
    else log.info('Run again with --verbose for the stack trace.');
    return 70;
  }
}

class CliUsageError extends Error {}

function formatCauseChain(error: Error): string {
  const parts: string[] = [];
  let current: unknown = error;
  while (current instanceof Error) {
    parts.push(current.stack ?? current.message);
    current = current.cause;
  }
  return parts.join('\nCaused by: ');
}
