import { join } from 'node:path';
import { log } from '../util/log.js';
import { pathExists } from '../util/path-exists.js';
import { REPORT_HTML, REPORT_MARKDOWN, writeRunReports } from './report/write-reports.js';
import type { Stage } from './stage.js';

/** The report stage: report.md and report.html of this run, from its results.json and manifest. */
export const reportStage: Stage = {
  name: 'report',
  needsEngine: false,
  async pending() {
    return 1;
  },
  async run(context) {
    const written = await writeRunReports([context.store.path], context.store.path);
    log.info(`report: ${written.markdown}, ${written.html}`);
  },
  async progress(run) {
    const done = (await pathExists(join(run.dir, REPORT_MARKDOWN))) && (await pathExists(join(run.dir, REPORT_HTML))) ? 1 : 0;
    return { done, total: 1, unit: 'report' };
  },
};
