import type { CommandModule } from '../command-module.js';

/** Every command the CLI knows; each file registers itself on yargs. */
export async function loadCommands(): Promise<CommandModule[]> {
  const modules = await Promise.all([
    import('./run.js'),
    import('./sweep.js'),
    import('./datasets.js'),
    import('./engine.js'),
    import('./bench.js'),
    import('./sandbox.js'),
    import('./execute.js'),
    import('./status.js'),
    import('./report.js'),
    import('./leaderboard.js'),
    import('./publish.js'),
    import('./export.js'),
    import('./merge.js'),
  ]);
  return modules.map((module) => module.command);
}
