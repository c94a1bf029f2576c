import type { RunSummary } from './run-summary.js';
import { reportTables, runLabel, sortRuns, type Table } from './tables.js';

function escapeCell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
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
    '| run | model | revision | card | engine | torch | date |',
    '|---|---|---|---|---|---|---|',
    ...sorted.map(
      (run) =>
        `| ${escapeCell(run.runId)} | ${escapeCell(runLabel(run))} | ${escapeCell(run.revision ?? '—')} | ${escapeCell(run.device)} | ${escapeCell(run.engine.version ?? '—')} | ${escapeCell(run.engine.torch ?? '—')} | ${escapeCell(run.date)} |`,
    ),
    '',
    '## Results',
    '',
  ];
  for (const table of reportTables(sorted)) lines.push(markdownTable(table), '');
  return `${lines.join('\n').trimEnd()}\n`;
}
