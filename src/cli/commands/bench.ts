import { ATTENTION_BACKENDS, QUANT_MODES, type DeviceChoice } from '../../backends/engine/protocol.js';
import { runLatencyMatrix } from '../../tasks/latency/matrix.js';
import { writeJsonAtomic } from '../../util/atomic-file.js';
import { UsageError } from '../../util/errors.js';
import { withInterrupt } from '../with-interrupt.js';
import { runServingBenchCommand, servingBenchOptions, type ServingBenchArgs } from './bench-serving.js';
import type { CommandModule } from '../command-module.js';
import { formatLatencyMatrix } from '../latency-table.js';
import { batchSize } from '../run-options.js';
import { parseChoiceList, parseIntList } from '../../util/option-values.js';
import { DEFAULTS, DEVICE_DEFAULTS_HELP, commaList, deviceDefaults } from '../../pipeline/defaults.js';

interface BenchArgs {
  backend: 'engine' | 'openai';
  model: string;
  quant?: string;
  attn?: string;
  device: string;
  batches?: string;
  'batch-size'?: number;
  deterministic?: boolean;
  contexts: string;
  warmup: number;
  iters: number;
  repeats: number;
  seed: number;
  output?: string;
  json: boolean;
}

export const command: CommandModule = {
  register(cli) {
    return cli.command(
      'bench',
      'The latency matrix alone (time per minibatch and peak memory over batch × context × precision × attention), or with --backend openai a model server as serving users time it (TTFT, TPOT, throughput by concurrency)',
      (yargs) =>
        servingBenchOptions(yargs)
          .option('backend', {
            type: 'string',
            choices: ['engine', 'openai'],
            default: 'engine',
            describe: "engine: our engine's latency matrix; openai: an OpenAI-compatible server",
          })
          .option('model', { type: 'string', default: DEFAULTS.model, describe: 'Hub id, local HF directory or preset:tiny-starcoder2' })
          .option('quant', { type: 'string', describe: `Comma list of ${QUANT_MODES.join(', ')} [default: ${DEVICE_DEFAULTS_HELP}]` })
          .option('attn', { type: 'string', describe: `Comma list of ${ATTENTION_BACKENDS.join(', ')} [default: ${DEVICE_DEFAULTS_HELP}]` })
          .option('device', { type: 'string', choices: ['auto', 'cpu', 'cuda'], default: 'auto' })
          .option('batches', { type: 'string', describe: `Batch sizes (rows per minibatch) [default: ${commaList(DEFAULTS.latency.batches)}]` })
          .option('batch-size', { type: 'number', describe: 'One batch size: the same as --batches N' })
          .option('deterministic', {
            type: 'boolean',
            describe: 'Time the batch-invariant engine (--no-deterministic: the fast path) [default: on for CPU, off on GPU]',
          })
          .option('contexts', { type: 'string', default: commaList(DEFAULTS.latency.contexts), describe: 'Context lengths (tokens)' })
          .option('warmup', { type: 'number', default: DEFAULTS.latency.warmup, describe: 'Warm-up minibatches per cell' })
          .option('iters', { type: 'number', default: DEFAULTS.latency.iters, describe: 'Timed minibatches per repeat' })
          .option('repeats', { type: 'number', default: DEFAULTS.latency.repeats, describe: 'Repeats (time per minibatch = median)' })
          .option('seed', { type: 'number', default: DEFAULTS.seed })
          .option('output', { alias: 'o', type: 'string', describe: 'Also write {header, cells} JSON to this file ({header, levels} with --backend openai)' }),
      async (argv) => {
        const args = argv as unknown as BenchArgs;
        if (args.backend === 'openai') {
          for (const flag of ['quant', 'attn', 'batches', 'batch-size', 'deterministic'] as const) {
            if (args[flag] !== undefined)
              throw new UsageError(`--${flag} times our engine; bench --backend openai does not use it`, { hint: `drop --${flag}` });
          }
          return runServingBenchCommand(args as unknown as ServingBenchArgs);
        }
        const quants = parseChoiceList(args.quant ?? deviceDefaults(args.device as DeviceChoice).quant, QUANT_MODES, '--quant');
        const attns = parseChoiceList(args.attn ?? deviceDefaults(args.device as DeviceChoice).attn, ATTENTION_BACKENDS, '--attn');
        if (args.batches !== undefined && args['batch-size'] !== undefined) {
          throw new UsageError('--batches and --batch-size both give the batch sizes', { hint: 'use one of them' });
        }
        const latency = {
          batches:
            args['batch-size'] !== undefined ? [batchSize(args['batch-size'])] : parseIntList(args.batches ?? commaList(DEFAULTS.latency.batches), '--batches'),
          contexts: parseIntList(args.contexts, '--contexts'),
          warmup: args.warmup,
          iters: args.iters,
          repeats: args.repeats,
        };
        const { header, cells } = await withInterrupt((signal) =>
          runLatencyMatrix({
            model: args.model,
            quants,
            attns,
            device: args.device as DeviceChoice,
            seed: args.seed,
            deterministic: args.deterministic,
            latency,
            onHeader: (line) => {
              if (args.json) process.stdout.write(`${JSON.stringify({ header: line })}\n`);
            },
            onCell: (cell) => {
              if (args.json) process.stdout.write(`${JSON.stringify(cell)}\n`);
            },
            signal,
          }),
        );
        if (args.output) await writeJsonAtomic(args.output, { header, cells });
        if (!args.json) process.stdout.write(`${formatLatencyMatrix(cells)}\n`);
      },
    );
  },
};
