import type { RunSummary } from './run-summary.js';
import { NOT_SCORED, notScoredLines, reportTables, runLabel, settingsTables, sortRuns, TRAINED_HERE, type Table } from './tables.js';

function escapeCell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/`/g, '\\`').replace(/\n/g, ' ');
}

export function markdownTable(table: Table): string {
  const lines = [`### ${table.title}`, ''];
  if (table.caption) lines.push(table.caption, '');
  lines.push(`| ${table.header.map(escapeCell).join(' | ')} |`);
  lines.push(`|${table.header.map((_, index) => (index === 0 ? '---' : '---:')).join('|')}|`);
  for (const row of table.rows) lines.push(`| ${row.map(escapeCell).join(' | ')} |`);
  return lines.join('\n');
}

/** report.md: the runs compared, then every table. */
export function renderMarkdown(runs: readonly RunSummary[], generatedAt: string): string {
  const sorted = sortRuns(runs);
  const lines = [
    '# evalpipe report',
    '',
    `Generated ${generatedAt} from ${sorted.length} run${sorted.length === 1 ? '' : 's'}.`,
    '',
    '## Runs',
    '',
    '| run | model | revision | card | engine | torch | date | results |',
    '|---|---|---|---|---|---|---|---|',
    ...sorted.map(
      (run) =>
        `| ${escapeCell(run.runId)} | ${escapeCell(runLabel(run))} | ${escapeCell(run.revision ?? '—')} | ${escapeCell(run.device)} | ${escapeCell(run.engine.version ?? '—')} | ${escapeCell(run.engine.torch ?? '—')} | ${escapeCell(run.date)} | ${run.scored ? 'scored' : NOT_SCORED} |`,
    ),
    '',
  ];
  const notScored = notScoredLines(sorted);
  if (notScored.length > 0) lines.push(...notScored.flatMap((line) => [`> **Not scored:** ${line}`, '']));
  if (sorted.some((run) => run.randomWeights)) {
    lines.push(
      '> **Random weights:** runs labelled "random weights" load a generated checkpoint (a preset); their figures test the pipeline, not a model.',
      '',
    );
  }
  if (sorted.some((run) => run.trained)) {
    lines.push(
      `> **Trained by evalpipe:** runs labelled "${TRAINED_HERE}" load a small model that bench/train_reference.py trained on Python files (its record names the corpus, seed and command); their figures are that model's, not StarCoder2's.`,
      '',
    );
  }
  lines.push('## Results', '');
  for (const table of reportTables(sorted)) lines.push(markdownTable(table), '');
  lines.push('## Settings', '');
  for (const table of settingsTables(sorted)) lines.push(markdownTable(table), '');
  return `${lines.join('\n').trimEnd()}\n`;
}
