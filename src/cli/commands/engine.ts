import { spawn } from 'node:child_process';
import type { CommandModule } from '../command-module.js';
import { EngineProcess } from '../../backends/engine/engine-process.js';
import { enginePythonCommand } from '../../backends/engine/python-command.js';
import type { EngineInfo } from '../../backends/engine/protocol.js';

export const command: CommandModule = {
  register(cli) {
    return cli.command('engine <action>', 'Run or inspect the engine process', (yargs) =>
      yargs
        .command(
          'serve',
          'Run the engine in the foreground, speaking the JSON-lines protocol on stdin/stdout (docs/engine-protocol.md)',
          () => undefined,
          async () => {
            const python = enginePythonCommand();
            const child = spawn(python.executable, python.args, { env: python.env, stdio: 'inherit' });
            const code = await new Promise<number>((resolve) => child.once('exit', (exitCode) => resolve(exitCode ?? 1)));
            process.exitCode = code;
          },
        )
        .command(
          'info',
          'Start the engine, optionally load a model, and print its versions and device',
          (y) => y.option('model', { type: 'string', describe: 'Also load this model and show what was loaded' }),
          async (argv) => {
            const engine = await EngineProcess.start();
            try {
              if (argv.model) await engine.request('load', { model: argv.model });
              const info = await engine.request<EngineInfo>('info', {}, { timeoutMs: 60_000 });
              process.stdout.write(`${JSON.stringify(info, null, 2)}\n`);
            } finally {
              await engine.shutdown();
            }
          },
        )
        .demandCommand(1, 'Name an engine action: serve or info.'),
    );
  },
};
