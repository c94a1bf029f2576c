import type { CommandModule } from '../command-module.js';
import { publish } from '../../leaderboard/publish.js';
import { UsageError } from '../../util/errors.js';
import { log } from '../../util/log.js';

export const command: CommandModule = {
  register(cli) {
    return cli.command(
      'publish [dirs..]',
      'Upload a leaderboard file and run results (manifest, results, reports) to a hub dataset repo in one commit; reads HF_TOKEN',
      (yargs) =>
        yargs
          .positional('dirs', { type: 'string', array: true, describe: 'Run directories to upload under runs/<run-id>/' })
          .option('repo', { type: 'string', demandOption: true, describe: 'Dataset repo, owner/name' })
          .option('leaderboard', {
            alias: 'l',
            type: 'string',
            describe: 'Leaderboard file to upload as leaderboard.json (validated against the schema first)',
          })
          .option('hub-url', { type: 'string', describe: 'Hub endpoint [default: HF_ENDPOINT or https://huggingface.co]' })
          .option('create', { type: 'boolean', default: false, describe: 'Create the dataset repo if it does not exist' })
          .option('branch', { type: 'string', describe: 'Branch to commit to [default: main]' })
          .option('message', { alias: 'm', type: 'string', describe: 'Commit title' })
          .example('$0 publish --repo my-org/evalpipe-results -l leaderboard.json results/*', 'leaderboard + every run'),
      async (argv) => {
        const token = process.env.HF_TOKEN;
        if (!token) throw new UsageError('HF_TOKEN is not set', { hint: 'export HF_TOKEN=hf_... (a token with write access to the dataset repo)' });
        const result = await publish({
          repo: argv.repo as string,
          accessToken: token,
          hubUrl: (argv['hub-url'] as string | undefined) ?? process.env.HF_ENDPOINT,
          leaderboard: argv.leaderboard as string | undefined,
          runDirs: (argv.dirs as string[] | undefined) ?? [],
          create: argv.create as boolean,
          branch: argv.branch as string | undefined,
          title: argv.message as string | undefined,
        });
        log.info(`publish: committed ${result.files.length} files to dataset ${result.repo} (${result.commit.oid})`);
        process.stdout.write(argv.json ? `${JSON.stringify(result)}\n` : `${result.commit.url}\n`);
      },
    );
  },
};
