import { spawn } from 'node:child_process';
import type { CommandModule } from '../command-module.js';
import { EngineProcess } from '../../backends/engine/engine-process.js';
import { enginePythonCommand } from '../../backends/engine/python-command.js';
import { ATTENTION_BACKENDS, QUANT_MODES, type DeviceChoice, type EngineInfo } from '../../backends/engine/protocol.js';
import { DEFAULTS, deviceDefaults } from '../../pipeline/defaults.js';
import { UsageError } from '../../util/errors.js';
import { nonEmpty, nonNegativeInt, parseChoiceList, positiveInt, type Flags } from '../../util/option-values.js';

/** The flags of `engine serve` that only the HTTP server takes (refused without --http). */
const HTTP_FLAGS = [
  'host',
  'model',
  'revision',
  'quant',
  'attn',
  'device',
  'seed',
  'api-key-env',
  'served-model-name',
  'deterministic',
  'max-batch-rows',
  'batch-wait-ms',
] as const;

/** One value of a choice flag (`--quant bf16`): the CLI's one list parser, then exactly one item. */
function oneChoice<T extends string>(text: string, allowed: readonly T[], flag: string): T {
  const values = parseChoiceList(text, allowed, flag);
  if (values.length !== 1) throw new UsageError(`${flag} takes one value here, got ${values.join(',')}`, { hint: `e.g. ${flag} ${allowed[0]}` });
  return values[0]!;
}

/** A TCP port, 0 meaning "pick a free one" (the server prints the one it got). */
export function parsePort(value: number): number {
  if (!Number.isInteger(value) || value < 0 || value > 65535) {
    throw new UsageError(`--http must be a port number from 0 to 65535, got ${String(value)}`, { hint: 'e.g. --http 8000 (0: any free port)' });
  }
  return value;
}

/**
 * The `python -m evalpipe_engine http ...` arguments for `engine serve --http PORT`. Model, precision, attention and
 * seed default as `run` defaults them (pipeline/defaults.ts), so a served model is the one a run would load.
 */
export function httpServerArgs(flags: Flags): string[] {
  const port = parsePort(Number(flags.http));
  const device = (flags.device as DeviceChoice | undefined) ?? 'auto';
  const defaults = flags.quant === undefined || flags.attn === undefined ? deviceDefaults(device) : undefined;
  const quant = flags.quant === undefined ? defaults!.quant : oneChoice(String(flags.quant), QUANT_MODES, '--quant');
  const attn = flags.attn === undefined ? defaults!.attn : oneChoice(String(flags.attn), ATTENTION_BACKENDS, '--attn');
  const seed = flags.seed === undefined ? DEFAULTS.seed : nonNegativeInt(Number(flags.seed), '--seed');
  const args = ['http', '--port', String(port), '--model', nonEmpty(String(flags.model ?? DEFAULTS.model), '--model')];
  args.push('--quant', quant, '--attn', attn, '--device', device, '--seed', String(seed));
  if (flags.host !== undefined) args.push('--host', nonEmpty(String(flags.host), '--host'));
  if (flags.revision !== undefined) args.push('--revision', nonEmpty(String(flags.revision), '--revision'));
  if (flags['api-key-env'] !== undefined) args.push('--api-key-env', nonEmpty(String(flags['api-key-env']), '--api-key-env'));
  if (flags['served-model-name'] !== undefined) {
    args.push('--served-model-name', nonEmpty(String(flags['served-model-name']), '--served-model-name'));
  }
  if (flags.deterministic !== undefined) args.push(flags.deterministic ? '--deterministic' : '--no-deterministic');
  if (flags['max-batch-rows'] !== undefined) args.push('--max-batch-rows', String(positiveInt(Number(flags['max-batch-rows']), '--max-batch-rows')));
  if (flags['batch-wait-ms'] !== undefined) {
    const wait = Number(flags['batch-wait-ms']);
    if (!(wait >= 0 && wait <= 10_000)) {
      throw new UsageError(`--batch-wait-ms must be a number from 0 to 10000, got ${String(flags['batch-wait-ms'])}`, { hint: 'e.g. --batch-wait-ms 5' });
    }
    args.push('--batch-wait-ms', String(wait));
  }
  return args;
}

/** Run the engine in the foreground with our stdio; SIGINT and SIGTERM go to it, and its exit code is ours. */
async function runForeground(engineArgs: string[] | undefined): Promise<number> {
  const python = engineArgs === undefined ? enginePythonCommand() : enginePythonCommand(process.env, engineArgs);
  const child = spawn(python.executable, python.args, { env: python.env, stdio: 'inherit' });
  const forward = (signal: NodeJS.Signals) => () => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  };
  const onSigint = forward('SIGINT');
  const onSigterm = forward('SIGTERM');
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigterm);
  try {
    return await new Promise<number>((resolve, reject) => {
      child.once('error', (error) =>
        reject(
          new UsageError(`cannot start the engine with ${python.executable}: ${error.message}`, {
            hint: 'run `bash scripts/setup.sh`, or set EVALPIPE_PYTHON',
          }),
        ),
      );
      child.once('exit', (code, signal) => resolve(code ?? (signal === 'SIGINT' ? 130 : signal === 'SIGTERM' ? 143 : 1)));
    });
  } finally {
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigterm);
  }
}

export const command: CommandModule = {
  register(cli) {
    return cli.command('engine <action>', 'Run or inspect the engine process', (yargs) =>
      yargs
        .command(
          'serve',
          'Run the engine in the foreground: the JSON-lines protocol on stdin/stdout (docs/engine-protocol.md), or with --http PORT an OpenAI-compatible HTTP server (docs/engine-http.md)',
          (y) =>
            y
              .option('http', {
                type: 'number',
                describe: 'Serve one model over HTTP on this port (0: any free port; the line `listening on http://HOST:PORT` on stderr names it)',
              })
              .option('host', { type: 'string', describe: 'Address to listen on (0.0.0.0: every interface) [default: 127.0.0.1]' })
              .option('model', { type: 'string', describe: `Hub id, local HF directory or preset:tiny-starcoder2 [default: ${DEFAULTS.model}]` })
              .option('revision', { type: 'string', describe: 'Model revision (branch, tag or commit) for hub ids' })
              .option('quant', { type: 'string', describe: `Precision: ${QUANT_MODES.join(', ')} [default: as run]` })
              .option('attn', { type: 'string', describe: `Attention backend: ${ATTENTION_BACKENDS.join(', ')} [default: as run]` })
              .option('device', { type: 'string', choices: ['auto', 'cpu', 'cuda'], describe: 'Where the engine runs [default: auto]' })
              .option('seed', {
                type: 'number',
                describe: `Random presets' weight seed and the sampling seed of requests without one [default: ${DEFAULTS.seed}]`,
              })
              .option('api-key-env', { type: 'string', describe: 'Require `Authorization: Bearer <key>`, the key read from this environment variable' })
              .option('served-model-name', { type: 'string', describe: 'The model name clients send [default: --model as given]' })
              .option('deterministic', { type: 'boolean', describe: 'The batch-invariant engine [default: on for CPU, off on GPU]' })
              .option('max-batch-rows', { type: 'number', describe: 'Samples decoded together across requests [default: 256]' })
              .option('batch-wait-ms', { type: 'number', describe: 'How long the engine waits for more requests to batch with the first [default: 5]' }),
          async (argv) => {
            const flags = argv as Flags;
            if (flags.http === undefined) {
              const given = HTTP_FLAGS.filter((flag) => flags[flag] !== undefined);
              if (given.length > 0) {
                throw new UsageError(`--${given[0]} applies to the HTTP server only`, {
                  hint: 'add --http PORT, or load a model through the JSON-lines protocol (`load` op)',
                });
              }
            }
            process.exitCode = await runForeground(flags.http === undefined ? undefined : httpServerArgs(flags));
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
