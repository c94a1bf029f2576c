import {
  ATTENTION_BACKENDS,
  QUANT_MODES,
  type AttentionBackend,
  type EngineInfo,
  type LoadResult,
  type QuantMode,
} from '../../engine/protocol.js';
import { EngineProcess } from '../../engine/engine-process.js';
import { EngineRequestError } from '../../engine/engine-errors.js';
import { runLatencyCells, type LatencyCell } from '../../pipeline/latency-stage.js';
import { writeJsonAtomic } from '../../util/atomic-file.js';
import { UsageError } from '../../util/errors.js';
import { log } from '../../util/log.js';
import type { CommandModule } from '../command-module.js';
import { formatLatencyMatrix } from '../latency-table.js';
import { batchSize, parseIntList } from '../run-options.js';

interface BenchArgs {
  model: string;
  quant: string;
  attn: string;
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
      'The latency matrix alone: time per minibatch and peak memory over batch × context × precision × attention',
      (yargs) =>
        yargs
          .option('model', { type: 'string', default: 'bigcode/starcoder2-3b', describe: 'Hub id, local HF directory or preset:tiny-starcoder2' })
          .option('quant', { type: 'string', default: 'bf16', describe: `Comma list of ${QUANT_MODES.join(', ')}` })
          .option('attn', { type: 'string', default: 'flash', describe: `Comma list of ${ATTENTION_BACKENDS.join(', ')}` })
          .option('device', { type: 'string', choices: ['auto', 'cpu', 'cuda'], default: 'auto' })
          .option('batches', { type: 'string', describe: 'Batch sizes (rows per minibatch) [default: 2,4,8]' })
          .option('batch-size', { type: 'number', describe: 'One batch size: the same as --batches N' })
          .option('deterministic', {
            type: 'boolean',
            describe: 'Time the batch-invariant engine (--no-deterministic: the fast path) [default: on for CPU, off on GPU]',
          })
          .option('contexts', { type: 'string', default: '4096,8192,16384', describe: 'Context lengths (tokens)' })
          .option('warmup', { type: 'number', default: 2, describe: 'Warm-up minibatches per cell' })
          .option('iters', { type: 'number', default: 4, describe: 'Timed minibatches per repeat' })
          .option('repeats', { type: 'number', default: 4, describe: 'Repeats (time per minibatch = median)' })
          .option('seed', { type: 'number', default: 1234 })
          .option('output', { alias: 'o', type: 'string', describe: 'Also write {header, cells} JSON to this file' }),
      async (argv) => {
        const args = argv as unknown as BenchArgs;
        const quants = parseChoices(args.quant, QUANT_MODES, '--quant') as QuantMode[];
        const attns = parseChoices(args.attn, ATTENTION_BACKENDS, '--attn') as AttentionBackend[];
        if (args.batches !== undefined && args['batch-size'] !== undefined) {
          throw new UsageError('--batches and --batch-size both give the batch sizes', { hint: 'use one of them' });
        }
        const latency = {
          batches: args['batch-size'] !== undefined ? [batchSize(args['batch-size'])] : parseIntList(args.batches ?? '2,4,8', '--batches'),
          contexts: parseIntList(args.contexts, '--contexts'),
          warmup: args.warmup,
          iters: args.iters,
          repeats: args.repeats,
        };
        const cells: LatencyCell[] = [];
        let header: Record<string, unknown> | undefined;
        for (const quant of quants) {
          for (const attn of attns) {
            const engine = await EngineProcess.start();
            try {
              let loaded: LoadResult;
              try {
                const deterministic = args.deterministic === undefined ? {} : { deterministic: args.deterministic };
                loaded = await engine.request<LoadResult>('load', { model: args.model, quant, attn, device: args.device, seed: args.seed, ...deterministic });
              } catch (error) {
                if (error instanceof EngineRequestError && error.type === 'unsupported') {
                  log.warn(`${quant}/${attn}: ${error.message} — skipped`);
                  continue;
                }
                throw error;
              }
              if (!header) {
                const info = await engine.request<EngineInfo>('info', {}, { timeoutMs: 60_000 });
                header = { ...benchHeader(info), deterministic: loaded.deterministic ?? false };
                if (args.json) process.stdout.write(`${JSON.stringify({ header })}\n`);
              }
              await runLatencyCells({
                engine,
                model: args.model,
                quant,
                attn,
                latency,
                onCell: async (_key, cell) => {
                  cells.push(cell);
                  if (args.json) process.stdout.write(`${JSON.stringify(cell)}\n`);
                },
              });
            } finally {
              await engine.shutdown();
            }
          }
        }
        if (args.output) await writeJsonAtomic(args.output, { header, cells });
        if (!args.json) process.stdout.write(`${formatLatencyMatrix(cells)}\n`);
      },
    );
  },
};

export function benchHeader(info: EngineInfo): Record<string, unknown> {
  return {
    card: info.device.name,
    driver: info.device.driver ?? null,
    torch: info.torch,
    triton: info.triton ?? null,
    transformers: info.transformers ?? null,
    engine_version: info.engine_version,
    date: new Date().toISOString(),
  };
}

function parseChoices(text: string, allowed: readonly string[], flag: string): string[] {
  const items = text.split(',').map((item) => item.trim()).filter(Boolean);
  const unknown = items.filter((item) => !allowed.includes(item));
  if (items.length === 0 || unknown.length > 0) {
    throw new UsageError(`${flag}: unknown value(s) ${unknown.join(', ') || '(empty)'}`, { hint: `use a comma list of ${allowed.join(', ')}` });
  }
  return items;
}
