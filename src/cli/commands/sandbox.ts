import type { CommandModule } from '../command-module.js';
import { hubOptionsFromEnv } from '../../datasets/hub-options.js';
import { loadHumanEval } from '../../tasks/humaneval/dataset.js';
import { buildSandboxImage } from '../../sandbox/build-image.js';
import { recipeImageTag } from '../../sandbox/image-recipe.js';
import { checkExecutionCount, runSandboxCheck } from '../../sandbox/sandbox-check.js';
import { VERDICTS_OPTION, parseVerdictMode } from '../../tasks/humaneval/verdicts-option.js';
import { SandboxPool } from '../../sandbox/sandbox-pool.js';
import { DEFAULT_LIMITS, checkTimeoutSeconds } from '../../sandbox/sandbox-limits.js';
import { Progress } from '../../util/progress.js';
import { withInterrupt } from '../with-interrupt.js';

export const command: CommandModule = {
  register(cli) {
    return cli.command('sandbox <action>', 'Build and check the Docker sandbox that runs HumanEval candidates', (yargs) =>
      yargs
        .command(
          'build',
          'Build the sandbox image: Debian packages -> root file system -> docker import (no registry; needs root), or --from-dockerfile',
          (y) =>
            y
              .option('from-dockerfile', {
                type: 'boolean',
                default: false,
                describe: 'Build sandbox/Dockerfile instead (no root needed; its FROM needs a registry unless --base-image names a local image)',
              })
              .option('base-image', {
                type: 'string',
                describe:
                  'With --from-dockerfile: the FROM image [default: debian:bookworm-slim]. Any image this Docker host has whose python3 has the standard library builds offline (no apt-get), e.g. the evalpipe-sandbox-base:<hash> a default build leaves',
              })
              .option('tag', { type: 'string', describe: 'With --from-dockerfile: tag the image this instead of evalpipe-sandbox:<recipe hash>' })
              .option('force', { type: 'boolean', default: false, describe: 'Rebuild even when the image for this recipe exists' }),
          async (argv) => {
            const flags = argv as unknown as { 'from-dockerfile': boolean; 'base-image'?: string; tag?: string; force: boolean; json: boolean };
            const result = await withInterrupt((signal) =>
              buildSandboxImage({ fromDockerfile: flags['from-dockerfile'], baseImage: flags['base-image'], tag: flags.tag, force: flags.force, signal }),
            );
            if (flags.json) process.stdout.write(`${JSON.stringify(result)}\n`);
            else process.stdout.write(`${result.image} ${result.built ? `built in ${result.seconds.toFixed(1)} s` : 'is already built'}\n`);
          },
        )
        .command(
          'check',
          'Run the 164 canonical solutions (all must pass), known-wrong completions (none may pass) and limit probes',
          (y) =>
            y
              .option('humaneval', {
                type: 'string',
                describe: 'HumanEval .jsonl/.jsonl.gz [default: $EVALPIPE_HUMANEVAL, else the hub openai/openai_humaneval]',
              })
              .option('image', { type: 'string', describe: 'Check this image [default: evalpipe-sandbox:<recipe hash>, what runs use]' })
              .option('concurrency', { type: 'number', describe: 'Containers at once [default: CPU cores]' })
              .option('timeout', { type: 'number', default: DEFAULT_LIMITS.timeoutMs / 1000, describe: 'Seconds per candidate' })
              .option('verdicts', VERDICTS_OPTION),
          async (argv) => {
            const flags = argv as unknown as { humaneval?: string; image?: string; concurrency?: number; timeout: number; verdicts?: string; json: boolean };
            const verdicts = parseVerdictMode(flags.verdicts);
            const report = await withInterrupt(async (signal) => {
              const { problems } = await loadHumanEval(flags.humaneval ?? process.env.EVALPIPE_HUMANEVAL, { ...hubOptionsFromEnv(process.env), signal });
              const pool = await SandboxPool.open({
                image: flags.image,
                concurrency: flags.concurrency,
                timeoutMs: checkTimeoutSeconds(flags.timeout) * 1000,
                verdicts,
                signal,
              });
              const progress = new Progress('sandbox check', checkExecutionCount(problems, verdicts), 'executions');
              try {
                return await runSandboxCheck(pool, problems, { signal, onResult: () => progress.tick() });
              } finally {
                progress.finish();
                await pool.close();
              }
            });
            if (flags.json) {
              process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
            } else {
              const mark = (ok: boolean): string => (ok ? 'ok' : 'FAILED');
              const lines = [
                `image ${report.image} (${report.verdicts} verdicts)`,
                `canonical solutions: ${report.canonical.passed}/${report.canonical.total} passed ${mark(report.canonical.passed === report.canonical.total)}`,
                ...report.canonical.notPassed.map((entry) => `  ${entry.task_id}: ${entry.status}${entry.message ? ` (${entry.message})` : ''}`),
                `known-wrong completions: ${report.knownWrong.passed}/${report.knownWrong.total} passed ${mark(report.knownWrong.passed === 0)} (${Object.entries(
                  report.knownWrong.byStatus,
                )
                  .map(([status, count]) => `${status} ${count}`)
                  .join(', ')})`,
                ...report.knownWrong.wronglyPassed.map((entry) => `  ${entry.task_id} ${entry.kind} passed`),
                ...(report.passedOnlyTheDefaultWay
                  ? [
                      `  of them passed the default way (stopped by isolation): ${
                        Object.entries(report.passedOnlyTheDefaultWay)
                          .map(([kind, count]) => `${kind} ${count}`)
                          .join(', ') || 'none'
                      }`,
                      `problems that cannot run isolated: ${report.notIsolated?.join(', ') || 'none'}`,
                    ]
                  : []),
                ...report.probes.map((probe) => `${probe.name}: ${probe.got} ${mark(probe.ok)}${probe.ok ? '' : ` (expected ${probe.expected})`}`),
                `sandbox errors: ${report.sandboxErrors} ${mark(report.sandboxErrors === 0)}`,
                `${report.executions} executions in ${report.seconds.toFixed(1)} s (${(report.executions / report.seconds).toFixed(0)}/s)`,
                report.ok ? 'sandbox check passed' : 'sandbox check FAILED',
              ];
              process.stdout.write(`${lines.join('\n')}\n`);
            }
            if (!report.ok) process.exitCode = 1;
          },
        )
        .command(
          'image',
          'Print the image tag this recipe builds (evalpipe-sandbox:<recipe hash>)',
          (y) => y,
          async () => {
            process.stdout.write(`${await recipeImageTag()}\n`);
          },
        )
        .demandCommand(1, 'Name a sandbox action: build, check or image.'),
    );
  },
};
