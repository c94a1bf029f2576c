import type { RunResults } from '../pipeline/run-pipeline.js';

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
      ['rows / tokens', `${p.rows} / ${p.scored_tokens}`],
      ['data set', `${p.dataset} [${p.text_field}]`],
    );
  }
  rows.push(['results', results.run_dir]);
  const width = Math.max(...rows.map(([label]) => label.length));
  return rows.map(([label, value]) => `${label.padEnd(width)}  ${value}`).join('\n');
}
