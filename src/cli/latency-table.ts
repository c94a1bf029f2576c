import { formatGib } from '../tasks/latency/stage.js';
import type { LatencyCell } from '../tasks/latency/records.js';

/** The study's shape: one block per precision/attention, rows = batch, columns = context, cells = s/minibatch. */
export function formatLatencyMatrix(cells: readonly LatencyCell[]): string {
  const groups = new Map<string, LatencyCell[]>();
  for (const cell of cells) {
    const key = `${cell.quant} ${cell.attn}`;
    groups.set(key, [...(groups.get(key) ?? []), cell]);
  }
  const blocks: string[] = [];
  for (const [name, group] of groups) {
    const contexts = [...new Set(group.map((cell) => cell.ctx))].sort((a, b) => a - b);
    const batches = [...new Set(group.map((cell) => cell.batch))].sort((a, b) => a - b);
    const lines = [`${name}: seconds per minibatch (tokens/s, peak GiB)`, ['batch', ...contexts.map(String)].join('\t')];
    for (const batch of batches) {
      const row = contexts.map((ctx) => {
        const cell = group.find((item) => item.batch === batch && item.ctx === ctx);
        if (!cell) return '-';
        if (cell.status === 'oom') return 'OOM';
        return `${cell.seconds_per_minibatch?.toFixed(3)} (${Math.round(cell.tokens_per_s ?? 0)}, ${formatGib(cell.peak_gib)})`;
      });
      lines.push([String(batch), ...row].join('\t'));
    }
    blocks.push(lines.join('\n'));
  }
  return blocks.join('\n\n');
}
