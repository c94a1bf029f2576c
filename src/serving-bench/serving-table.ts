import type { Distribution, ServingLevel } from './serving-stats.js';

const ms = (value: number | null): string => (value === null ? '—' : value >= 100 ? value.toFixed(0) : value.toFixed(1));
const pair = (d: Distribution): string => `${ms(d.p50)} / ${ms(d.p99)}`;

/** The serving benchmark as a table: one row per concurrency, latencies as p50 / p99 in milliseconds. */
export function formatServingTable(levels: readonly ServingLevel[]): string {
  const header = ['concurrency', 'ok / failed', 'req/s', 'out tok/s', 'TTFT ms p50/p99', 'TPOT ms p50/p99', 'ITL ms p50/p99', 'E2E ms p50/p99'];
  const rows = levels.map((level) => [
    String(level.concurrency),
    `${level.completed} / ${level.failed}`,
    level.request_throughput.toFixed(2),
    level.output_token_throughput.toFixed(0),
    pair(level.ttft_ms),
    pair(level.tpot_ms),
    pair(level.itl_ms),
    pair(level.e2e_ms),
  ]);
  const widths = header.map((cell, column) => Math.max(cell.length, ...rows.map((row) => row[column]!.length)));
  const line = (cells: string[]) => `| ${cells.map((cell, column) => cell.padStart(widths[column]!)).join(' | ')} |`;
  const out = [line(header), `|${widths.map((width) => '-'.repeat(width + 2)).join('|')}|`, ...rows.map(line)];
  const errors = levels.flatMap((level) => level.errors.map((error) => `concurrency ${level.concurrency}: ${error}`));
  return [...out, ...errors.map((error) => `failed: ${error}`)].join('\n');
}
