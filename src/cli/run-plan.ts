import { createHash } from 'node:crypto';
import { join, resolve } from 'node:path';
import { ATTENTION_BACKENDS, QUANT_MODES, type DeviceChoice } from '../backends/engine/protocol.js';
import { deviceDefaults } from '../pipeline/defaults.js';
import { runDirectoryFor } from '../pipeline/run-pipeline.js';
import type { SweepItem } from '../pipeline/run-sweep.js';
import { UsageError } from '../util/errors.js';
import { parseChoiceList } from '../util/option-values.js';
import { buildRunConfig, type RawRunOptions } from './run-options.js';

/** The runs one `run` or `sweep` command makes: one per precision × attention, and where their joint report goes. */
export interface RunPlan {
  items: SweepItem[];
  reportDir: string;
}

export interface RawPlanOptions extends RawRunOptions {
  'report-dir'?: string;
}

/**
 * Every combination of --quant × --attn (each one value or a comma list, the same shape in every command) with the
 * other run options shared, each its own run directory (named by its config hash, so the same command resumes
 * every one of them), validated up front so that a bad value fails before hours of work start. The joint report of
 * several runs goes to --report-dir (default <results-dir>/sweep-<hash>).
 */
export function planRuns(raw: RawPlanOptions): RunPlan {
  const device = raw.device ?? (raw.preset === 'smoke' ? 'cpu' : undefined);
  const quants = parseChoiceList(raw.quant ?? deviceDefaults((device ?? 'auto') as DeviceChoice).quant, QUANT_MODES, '--quant');
  const attns = parseChoiceList(raw.attn ?? deviceDefaults((device ?? 'auto') as DeviceChoice).attn, ATTENTION_BACKENDS, '--attn');
  if (raw['run-dir'] !== undefined && quants.length * attns.length > 1) {
    throw new UsageError('several precision × attention combinations each get their own run directory; --run-dir names only one', {
      hint: 'drop --run-dir (runs go to <results-dir>/<run-id>/, --results-dir chooses where) and use --report-dir for the joint report',
    });
  }
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
  const resultsDir = raw['results-dir'] ?? join(process.cwd(), 'results');
  return { items, reportDir: resolve(raw['report-dir'] ?? join(resultsDir, `sweep-${hash}`)) };
}
