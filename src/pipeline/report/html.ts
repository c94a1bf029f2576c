import type { RunSummary } from './run-summary.js';
import { escapeXml, groupedBarChart, type BarSeries } from './svg-chart.js';
import { reportTables, runLabel, shortModel, sortRuns, type Table } from './tables.js';

function htmlTable(table: Table): string {
  const head = table.header.map((cell) => `<th>${escapeXml(cell)}</th>`).join('');
  const body = table.rows
    .map((row) => `<tr>${row.map((cell) => `<td${cell === 'OOM' ? ' class="oom"' : ''}>${escapeXml(cell)}</td>`).join('')}</tr>`)
    .join('\n');
  const caption = table.caption ? `<p class="caption">${escapeXml(table.caption)}</p>` : '';
  return `<section id="${escapeXml(table.id)}"><h3>${escapeXml(table.title)}</h3>${caption}<table><thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody></table></section>`;
}

/** The charts: perplexity and pass@1 per run (± s.e.), and time per minibatch per model and card. */
export function reportCharts(runs: readonly RunSummary[]): string[] {
  const sorted = sortRuns(runs);
  const charts: string[] = [];
  const withPerplexity = sorted.filter((run) => run.perplexity);
  if (withPerplexity.length > 0) {
    charts.push(
      groupedBarChart({
        id: 'chart-perplexity',
        title: 'Perplexity by precision (lower is better)',
        yLabel: 'perplexity',
        categories: withPerplexity.map(runLabel),
        series: [
          {
            name: 'perplexity ± s.e.',
            values: withPerplexity.map((run) => run.perplexity!.perplexity.value),
            errors: withPerplexity.map((run) => run.perplexity!.perplexity.se),
          },
        ],
        digits: 4,
      }),
    );
  }
  const withPass = sorted.filter((run) => run.humaneval?.passAtK['pass@1']);
  if (withPass.length > 0) {
    charts.push(
      groupedBarChart({
        id: 'chart-pass-at-1',
        title: 'HumanEval pass@1 by precision (higher is better)',
        yLabel: 'pass@1',
        categories: withPass.map(runLabel),
        series: [
          {
            name: 'pass@1 ± s.e.',
            values: withPass.map((run) => run.humaneval!.passAtK['pass@1']!.value),
            errors: withPass.map((run) => run.humaneval!.passAtK['pass@1']!.se),
          },
        ],
      }),
    );
  }
  const latencyGroups = new Map<string, RunSummary[]>();
  for (const run of sorted.filter((item) => item.latency.length > 0)) {
    const key = `${run.model}|${run.device}`;
    latencyGroups.set(key, [...(latencyGroups.get(key) ?? []), run]);
  }
  let index = 0;
  for (const group of latencyGroups.values()) {
    const cells = [...new Set(group.flatMap((run) => run.latency.map((cell) => `${cell.batch}×${cell.ctx}`)))];
    const series: BarSeries[] = group.map((run) => {
      const find = (label: string) => run.latency.find((cell) => `${cell.batch}×${cell.ctx}` === label);
      return {
        name: `${run.quant}${run.computeDtype ? `/${run.computeDtype}` : ''} ${run.attn}`,
        values: cells.map((label) => {
          const cell = find(label);
          return cell?.status === 'ok' ? cell.seconds_per_minibatch : null;
        }),
        notes: cells.map((label) => (find(label)?.status === 'oom' ? 'OOM' : null)),
      };
    });
    index += 1;
    charts.push(
      groupedBarChart({
        id: `chart-latency-${index}`,
        title: `Time per minibatch: ${shortModel(group[0]!.model)} on ${group[0]!.device}`,
        yLabel: 'seconds per minibatch',
        categories: cells,
        series,
      }),
    );
  }
  return charts;
}

const STYLE = `
body { font-family: sans-serif; margin: 2em auto; max-width: 1100px; color: #222; background: #fff; }
h1 { font-size: 1.6em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ccc; } h3 { font-size: 1.05em; margin-bottom: .3em; }
table { border-collapse: collapse; margin: .5em 0 1.2em; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; } th { background: #f0f3f7; }
td:first-child, th:first-child { text-align: left; }
td.oom { color: #c0392b; font-weight: bold; }
.caption { color: #555; font-size: 12px; margin: 0; }
.chart { display: block; margin: 1em 0; border: 1px solid #eee; }
`;

/** report.html: one self-contained page (inline CSS and SVG, a CSP that forbids any network fetch). */
export function renderHtml(runs: readonly RunSummary[], generatedAt: string): string {
  const sorted = sortRuns(runs);
  const runRows = sorted
    .map(
      (run) =>
        `<tr><td>${escapeXml(run.runId)}</td><td>${escapeXml(runLabel(run))}</td><td>${escapeXml(run.revision ?? '—')}</td><td>${escapeXml(run.device)}</td><td>${escapeXml(run.engine.version ?? '—')}</td><td>${escapeXml(run.engine.torch ?? '—')}</td><td>${escapeXml(run.date)}</td></tr>`,
    )
    .join('\n');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>evalpipe report</title>
<style>${STYLE}</style>
</head>
<body>
<h1>evalpipe report</h1>
<p>Generated ${escapeXml(generatedAt)} from ${sorted.length} run${sorted.length === 1 ? '' : 's'}.</p>
<h2>Charts</h2>
${reportCharts(sorted).join('\n')}
<h2>Runs</h2>
<table><thead><tr><th>run</th><th>model</th><th>revision</th><th>card</th><th>engine</th><th>torch</th><th>date</th></tr></thead><tbody>
${runRows}
</tbody></table>
<h2>Results</h2>
${reportTables(sorted).map(htmlTable).join('\n')}
</body>
</html>
`;
}
