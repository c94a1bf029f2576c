import { createHash } from 'node:crypto';
import { join, resolve } from 'node:path';
import { ATTENTION_BACKENDS, QUANT_MODES, type DeviceChoice } from '../backends/engine/protocol.js';
import type { SweepItem } from '../pipeline/run-sweep.js';
import { runDirectoryFor } from '../pipeline/run-pipeline.js';
import { UsageError } from '../util/errors.js';
import { buildRunConfig, type RawRunOptions } from './run-options.js';
import { DEFAULTS, defaultQuant } from '../pipeline/defaults.js';

export interface SweepPlan {
  items: SweepItem[];
  reportDir: string;
}

export interface RawSweepOptions extends RawRunOptions {
  quants?: string;
  attns?: string;
  'report-dir'?: string;
}

function listOf(value: string | undefined, fallback: string, allowed: readonly string[], flag: string): string[] {
  const items = (value ?? fallback)
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);
  if (items.length === 0) throw new UsageError(`${flag} is empty`, { hint: `give a comma list of ${allowed.join(', ')}` });
  const unknown = items.filter((item) => !allowed.includes(item));
  if (unknown.length > 0) throw new UsageError(`${flag}: unknown ${unknown.join(', ')}`, { hint: `use ${allowed.join(', ')}` });
  const repeated = items.filter((item, index) => items.indexOf(item) !== index);
  if (repeated.length > 0) throw new UsageError(`${flag} names ${repeated[0]} twice`, { hint: 'give each value once' });
  return items;
}

/**
 * Every combination of --quants × --attns with the other run options shared, each its own run directory (named by
 * its config hash, so the same sweep command resumes every one of them), validated up front so that a bad value
 * fails before hours of work start. The combined report goes to --report-dir (default results/sweep-<hash>).
 */
export function planSweep(raw: RawSweepOptions): SweepPlan {
  if (raw.quant !== undefined || raw.attn !== undefined) {
    throw new UsageError('sweep takes --quants and --attns (comma lists), not --quant/--attn', {
      hint: 'e.g. evalpipe sweep --quants bf16,int8,nf4,fp8 --attns sdpa,flash',
    });
  }
  if (raw['run-dir'] !== undefined) {
    throw new UsageError('sweep gives every combination its own run directory; --run-dir names only one', {
      hint: 'drop --run-dir (runs go to results/<run-id>/) and use --report-dir for the combined report',
    });
  }
  const device = raw.device ?? (raw.preset === 'smoke' ? 'cpu' : undefined);
  const quants = listOf(raw.quants, defaultQuant((device ?? 'auto') as DeviceChoice), QUANT_MODES, '--quants');
  const attns = listOf(raw.attns, DEFAULTS.attn, ATTENTION_BACKENDS, '--attns');
  const items: SweepItem[] = [];
  for (const quant of quants) {
    for (const attn of attns) {
      const { config, settings } = buildRunConfig({ ...raw, quant, attn });
      items.push({ label: `${quant} ${attn}`, config, settings, runDir: runDirectoryFor(config, settings) });
    }
  }
  const hash = createHash('sha256')
    .update(items.map((item) => item.runDir).join('\n'))
    .digest('hex')
    .slice(0, 10);
  return { items, reportDir: resolve(raw['report-dir'] ?? join(process.cwd(), 'results', `sweep-${hash}`)) };
}
