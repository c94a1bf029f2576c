import { formatGib } from '../tasks/latency/stage.js';
import type { RunResults } from '../pipeline/store/results.js';

/** The short human summary printed after a run. */
export function formatResultsTable(results: RunResults): string {
  const rows: [string, string][] = [
    ['run', results.run_id],
    ['model', `${results.model} (${results.quant}, ${results.attn})`],
  ];
  if (results.perplexity) {
    const p = results.perplexity;
    rows.push(
      ['perplexity', p.perplexity.toFixed(4)],
      ['bits per byte', p.bits_per_byte.toFixed(4)],
      ['rows / tokens', `${p.rows} / ${p.scored_tokens}${rowsNote(p)}`],
      ['data set', `${p.dataset} [${p.text_field}]`],
    );
  }
  if (results.humaneval) {
    const h = results.humaneval;
    for (const [k, value] of Object.entries(h.pass_at_k)) rows.push([k, value.toFixed(4)]);
    rows.push([
      'problems × samples',
      `${h.n_problems} × ${h.n_samples_per_problem}${h.subset?.is_subset ? ` (a subset: ${h.subset.problems} of ${h.subset.of} problems, --limit)` : ''}`,
    ]);
    rows.push([
      'statuses',
      Object.entries(h.status_counts)
        .map(([status, count]) => `${status} ${count}`)
        .join(', '),
    ]);
  }
  if (results.latency) {
    for (const cell of results.latency.cells) {
      rows.push([
        `latency ${cell.batch}x${cell.ctx}`,
        cell.status === 'oom'
          ? 'OOM'
          : `${cell.seconds_per_minibatch?.toFixed(4)} s/minibatch, ${Math.round(cell.tokens_per_s ?? 0)} tokens/s, peak ${formatGib(cell.peak_gib)}`,
      ]);
    }
  }
  rows.push(['results', results.run_dir]);
  const width = Math.max(...rows.map(([label]) => label.length));
  return rows.map(([label, value]) => `${label.padEnd(width)}  ${value}`).join('\n');
}

/** Why the scored rows are fewer than asked: rows the engine failed on, or a data set shorter than --rows. */
function rowsNote(p: NonNullable<RunResults['perplexity']>): string {
  if (p.rows_failed) return ` (${p.rows_failed} rows failed in the engine and are left out: a subset)`;
  if (p.rows_requested !== undefined && p.rows < p.rows_requested) return ` (the data set has ${p.rows} of the ${p.rows_requested} rows asked)`;
  return '';
}
