import { join, resolve } from 'node:path';
import { writeFileAtomic } from '../../util/atomic-file.js';
import { log } from '../../util/log.js';
import { renderHtml } from './html.js';
import { renderMarkdown } from './markdown.js';
import { summariseRunDirs, type RunSummary } from './run-summary.js';
import { notScoredLines } from './tables.js';

export const REPORT_MARKDOWN = 'report.md';
export const REPORT_HTML = 'report.html';

/**
 * Read one or more run directories and write report.md and report.html (self-contained) into outDir; a run not
 * scored (no results.json) is reported as such and warned about on stderr. Returns the two paths. The `report` stage of `evalpipe run` calls this with [runDir] and runDir.
 */
export async function writeRunReports(runDirs: string[], outDir: string): Promise<{ markdown: string; html: string }> {
  const summaries = await summariseRunDirs(runDirs);
  return writeReportsFor(summaries, outDir);
}

export async function writeReportsFor(summaries: readonly RunSummary[], outDir: string, now = new Date()): Promise<{ markdown: string; html: string }> {
  const directory = resolve(outDir);
  const generatedAt = now.toISOString();
  const markdown = join(directory, REPORT_MARKDOWN);
  const html = join(directory, REPORT_HTML);
  // A run without results.json has no figures: one warning line each, naming it and the command that scores it.
  for (const line of notScoredLines(summaries)) log.warn(line);
  await writeFileAtomic(markdown, renderMarkdown(summaries, generatedAt));
  await writeFileAtomic(html, renderHtml(summaries, generatedAt));
  return { markdown, html };
}
