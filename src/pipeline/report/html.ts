import type { RunSummary } from './run-summary.js';
import { barCount, escapeXml, groupedBarChart, type BarChartOptions, type BarSeries } from './svg-chart.js';
import {
  formatEstimate,
  NOT_SCORED,
  notScoredLines,
  precisionLabel,
  RANDOM_WEIGHTS,
  TRAINED_HERE,
  weightsTag,
  reportTables,
  runLabel,
  settingsTables,
  shortModel,
  sortRuns,
  type Table,
} from './tables.js';

function htmlTable(table: Table): string {
  const head = table.header.map((cell) => `<th>${escapeXml(cell)}</th>`).join('');
  const body = table.rows
    .map(
      (row) =>
        `<tr>${row.map((cell) => `<td${cell === 'OOM' ? ' class="oom"' : cell === NOT_SCORED ? ' class="not-scored"' : ''}>${escapeXml(cell)}</td>`).join('')}</tr>`,
    )
    .join('\n');
  const caption = table.caption ? `<p class="caption">${escapeXml(table.caption)}</p>` : '';
  return `<section id="${escapeXml(table.id)}"><h3>${escapeXml(table.title)}</h3>${caption}<table><thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody></table></section>`;
}

/** A figure that has no chart (one bar would compare nothing): shown as a value in a table instead. */
export interface InlineFigure {
  figure: string;
  run: string;
  value: string;
}

/** A run's name under its bar: model, precision and attention, and "(random weights)" or "(trained by evalpipe)" on a second line. */
function chartLabel(run: RunSummary): string {
  return `${shortModel(run.model)} ${precisionLabel(run)} ${run.attn}${weightsTag(run).replace(' (', '\n(')}`;
}

/**
 * The charts (perplexity and pass@1 per run ± s.e., time per minibatch per model and card), each only where it
 * has two or more bars to compare; a figure with a single bar (a one-run report) is an inline value instead.
 */
export function reportFigures(runs: readonly RunSummary[]): { charts: string[]; figures: InlineFigure[] } {
  const sorted = sortRuns(runs);
  const charts: string[] = [];
  const figures: InlineFigure[] = [];
  const chartOrFigure = (options: BarChartOptions, inline: () => InlineFigure[]): void => {
    if (barCount(options.series) >= 2) charts.push(groupedBarChart(options));
    else figures.push(...inline());
  };
  const withPerplexity = sorted.filter((run) => run.perplexity);
  if (withPerplexity.length > 0) {
    chartOrFigure(
      {
        id: 'chart-perplexity',
        title: 'Perplexity by precision (lower is better)',
        yLabel: 'perplexity',
        categories: withPerplexity.map(chartLabel),
        series: [
          {
            name: 'perplexity ± s.e.',
            values: withPerplexity.map((run) => run.perplexity!.perplexity.value),
            errors: withPerplexity.map((run) => run.perplexity!.perplexity.se),
          },
        ],
        digits: 4,
      },
      () => withPerplexity.map((run) => ({ figure: 'Perplexity (lower is better)', run: runLabel(run), value: formatEstimate(run.perplexity!.perplexity, 4) })),
    );
  }
  const withPass = sorted.filter((run) => run.humaneval?.passAtK['pass@1']);
  if (withPass.length > 0) {
    chartOrFigure(
      {
        id: 'chart-pass-at-1',
        title: 'HumanEval pass@1 by precision (higher is better)',
        yLabel: 'pass@1',
        categories: withPass.map(chartLabel),
        series: [
          {
            name: 'pass@1 ± s.e.',
            values: withPass.map((run) => run.humaneval!.passAtK['pass@1']!.value),
            errors: withPass.map((run) => run.humaneval!.passAtK['pass@1']!.se),
          },
        ],
      },
      () =>
        withPass.map((run) => ({
          figure: 'HumanEval pass@1 (higher is better)',
          run: runLabel(run),
          value: `${formatEstimate(run.humaneval!.passAtK['pass@1'], 3)} (${run.humaneval!.nProblems} × ${run.humaneval!.nSamplesPerProblem})`,
        })),
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
    const first = group[0]!;
    chartOrFigure(
      {
        id: `chart-latency-${index}`,
        title: `Time per minibatch: ${shortModel(first.model)}${first.randomWeights ? ` (${RANDOM_WEIGHTS})` : ''} on ${first.device}`,
        yLabel: 'seconds per minibatch',
        categories: cells,
        series,
      },
      () =>
        group.flatMap((run) =>
          run.latency.map((cell) => ({
            figure: `Time per minibatch (s), batch ${cell.batch} × context ${cell.ctx}`,
            run: runLabel(run),
            value: cell.status === 'oom' ? 'OOM' : cell.seconds_per_minibatch === null ? '—' : cell.seconds_per_minibatch.toFixed(3),
          })),
        ),
    );
  }
  return { charts, figures };
}

/** The charts alone (see reportFigures). */
export function reportCharts(runs: readonly RunSummary[]): string[] {
  return reportFigures(runs).charts;
}

function figuresHtml(figures: readonly InlineFigure[]): string {
  if (figures.length === 0) return '';
  const rows = figures
    .map((figure) => `<tr><td>${escapeXml(figure.figure)}</td><td>${escapeXml(figure.run)}</td><td class="figure-value">${escapeXml(figure.value)}</td></tr>`)
    .join('\n');
  return `<section id="figures"><p class="caption">One bar compares nothing: these figures are values, not charts (a chart needs two or more runs or cells).</p><table class="figures"><thead><tr><th>figure</th><th>run</th><th>value</th></tr></thead><tbody>\n${rows}\n</tbody></table></section>`;
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
.notice { border-left: 4px solid #b03a2e; background: #fdf2f0; padding: .4em .8em; margin: .6em 0; }
.notice.random { border-left-color: #b9770e; background: #fef9e7; }
td.figure-value { font-size: 16px; font-weight: bold; }
.not-scored { color: #b03a2e; font-weight: bold; }
.random-weights { color: #b9770e; font-weight: bold; }
`;

/** report.html: one self-contained page (inline CSS and SVG, a CSP that forbids any network fetch). */
export function renderHtml(runs: readonly RunSummary[], generatedAt: string): string {
  const sorted = sortRuns(runs);
  const runRows = sorted
    .map(
      (run) =>
        `<tr><td>${escapeXml(run.runId)}</td><td${run.randomWeights ? ' class="random-weights"' : ''}>${escapeXml(runLabel(run))}</td><td>${escapeXml(run.revision ?? '—')}</td><td>${escapeXml(run.device)}</td><td>${escapeXml(run.engine.version ?? '—')}</td><td>${escapeXml(run.engine.torch ?? '—')}</td><td>${escapeXml(run.date)}</td><td${run.scored ? '' : ' class="not-scored"'}>${run.scored ? 'scored' : NOT_SCORED}</td></tr>`,
    )
    .join('\n');
  const notices = [
    ...notScoredLines(sorted).map((line) => `<p class="notice not-scored-notice"><strong>Not scored:</strong> ${escapeXml(line)}</p>`),
    ...(sorted.some((run) => run.randomWeights)
      ? [
          `<p class="notice random"><strong>Random weights:</strong> runs labelled “${RANDOM_WEIGHTS}” load a generated checkpoint (a preset); their figures test the pipeline, not a model.</p>`,
        ]
      : []),
    ...(sorted.some((run) => run.trained)
      ? [
          `<p class="notice trained"><strong>Trained by evalpipe:</strong> runs labelled “${TRAINED_HERE}” load a small model that bench/train_reference.py trained on Python files (its record names the corpus, seed and command); their figures are that model's, not StarCoder2's.</p>`,
        ]
      : []),
  ].join('\n');
  const { charts, figures } = reportFigures(sorted);
  const noFigures = charts.length === 0 && figures.length === 0 ? '<p class="caption">No figures: no run here has results.json.</p>' : '';
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
${notices}
<h2>Charts</h2>
${charts.join('\n')}
${figuresHtml(figures)}${noFigures}
<h2>Runs</h2>
<table><thead><tr><th>run</th><th>model</th><th>revision</th><th>card</th><th>engine</th><th>torch</th><th>date</th><th>results</th></tr></thead><tbody>
${runRows}
</tbody></table>
<h2>Results</h2>
${reportTables(sorted).map(htmlTable).join('\n')}
<h2>Settings</h2>
${settingsTables(sorted).map(htmlTable).join('\n')}
</body>
</html>
`;
}
