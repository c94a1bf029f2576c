import type { Argv } from 'yargs';

/** One CLI command: a file under src/cli/commands/ exports one of these. */
export interface CommandModule {
  register(cli: Argv): Argv;
}

/** Flags every command understands. */
export interface GlobalFlags {
  verbose: boolean;
  json: boolean;
}
