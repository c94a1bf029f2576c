import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  FAULT_STAGES,
  checkRecordFile,
  childPids,
  comparableResults,
  completeLines,
  faultCommand,
  isAlive,
  seededRandom,
  stageFinished,
  stageStarted,
  startCli,
  waitUntil,
  withoutTiming,
  writeFaultDataset,
  type FaultCommandConfig,
} from './harness.js';

/** Kills that must land in the middle of each stage; a stage gets up to MAX_ATTEMPTS_PER_STAGE tries. */
const KILLS_PER_STAGE = 5;
const MAX_ATTEMPTS_PER_STAGE = 8;

interface Landed {
  stage: string;
  afterMs: number;
  records: number;
  total: number;
  midStage: boolean;
  torn: number;
}

describe('kill -9 at random points, resume with the same command', () => {
  let root: string;
  let config: FaultCommandConfig;
  let reference: string;
  /** How long each stage took in the uninterrupted run (ms), to spread kill points over it. */
  const durations = new Map<string, number>();

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'evalpipe-fault-kill-'));
    config = { dataset: join(root, 'texts.jsonl'), rows: 240, humanevalLimit: 3, samples: 8 };
    await writeFaultDataset(config.dataset, config.rows);
    reference = join(root, 'reference');
    const run = startCli(faultCommand(reference, config));
    let exited = false;
    void run.exited.then(() => (exited = true));
    const started = new Map<string, number>();
    while (!exited) {
      const text = run.stderr();
      for (const { stage } of FAULT_STAGES) {
        if (!started.has(stage) && stageStarted(text, stage)) started.set(stage, Date.now());
        if (started.has(stage) && !durations.has(stage) && stageFinished(text, stage)) durations.set(stage, Date.now() - started.get(stage)!);
      }
      await delay(1);
    }
    const result = await run.exited;
    expect(result.code, result.stderr).toBe(0);
    expect([...durations.keys()].sort()).toEqual(FAULT_STAGES.map((stage) => stage.stage).sort());
  }, 1_200_000); // an upper bound for a saturated 2-core machine, not an expected duration
  afterAll(async () => {
    if (root) await rm(root, { recursive: true, force: true });
  });

  it(`survives kills at random points spread over ${FAULT_STAGES.map((stage) => stage.stage).join(', ')}: identical records, none lost or duplicated`, async () => {
    const seed = Number(process.env.EVALPIPE_FAULT_SEED ?? Date.now() % 1_000_000);
    const random = seededRandom(seed);
    const context = `kill schedule seed ${seed} (replay with EVALPIPE_FAULT_SEED=${seed}); reference stage ms ${JSON.stringify(Object.fromEntries(durations))}`;
    const runDir = join(root, 'killed');
    const landed: Landed[] = [];
    for (const stage of FAULT_STAGES) {
      const total = stage.units(config);
      const file = join(runDir, 'records', `${stage.stage}.jsonl`);
      for (let i = 0, mid = 0; i < MAX_ATTEMPTS_PER_STAGE && mid < KILLS_PER_STAGE; i += 1) {
        const before = await checkRecordFile(file);
        if (before.completeLines >= total) break;
        // Kill points alternate between two kinds: a random time early in the stage (inside the first engine
        // request or container run, before this attempt's first record), and a random record count stratified
        // over the stage (between two records, or inside one).
        const slot = mid % KILLS_PER_STAGE;
        const byTime = i % 2 === 0;
        const waitMs = random() * Math.min(300, 0.5 * durations.get(stage.stage)!);
        const low = before.completeLines + 1;
        const high = Math.max(low, Math.floor(0.7 * total));
        const target = Math.min(high, Math.max(low, Math.floor(((slot + random()) / KILLS_PER_STAGE) * high)));
        const run = startCli(faultCommand(runDir, config));
        const inStage = await waitUntil(() => stageStarted(run.stderr(), stage.stage), { timeoutMs: 120_000, intervalMs: 1, done: run.exited });
        if (!inStage) throw new Error(`${context}: the run ended before ${stage.stage} started: ${(await run.exited).stderr.slice(-800)}`);
        const startedAt = Date.now();
        await waitUntil(() => (byTime ? Date.now() - startedAt >= waitMs : completeLines(file) >= target) || stageFinished(run.stderr(), stage.stage), {
          timeoutMs: 120_000,
          intervalMs: 1,
          done: run.exited,
        });
        if (!byTime) await delay(random() * 3);
        const midStage = !stageFinished(run.stderr(), stage.stage);
        const engines = childPids(run.child.pid!);
        run.child.kill('SIGKILL');
        const result = await run.exited;
        expect(result.signal, `${context}: the CLI exited (code ${result.code}) before the kill: ${result.stderr.slice(-500)}`).toBe('SIGKILL');
        // An orphaned engine notices its closed stdin and exits: no process is left behind.
        await waitUntil(() => engines.every((pid) => !isAlive(pid)), { timeoutMs: 30_000, intervalMs: 50 }).catch((error: Error) => {
          const alive = engines.filter(isAlive).map((pid) => `${pid} ${readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ')}`);
          throw new Error(`${context}: ${error.message}: still running after the kill in ${stage.stage}: ${alive.join('; ')}`);
        });
        const check = await checkRecordFile(file);
        expect(check.corruptLines, `${context}: corrupt lines after a kill`).toEqual([]);
        expect(check.duplicates, `${context}: duplicated keys after a kill`).toEqual([]);
        if (midStage) mid += 1;
        landed.push({ stage: stage.stage, afterMs: Math.round(Date.now() - startedAt), records: check.completeLines, total, midStage, torn: check.tornBytes });
      }
    }
    const summary = landed.map((kill) => `${kill.stage}@${kill.records}/${kill.total}${kill.midStage ? '' : '(at end)'}${kill.torn ? '+torn' : ''}`).join(', ');
    // At least 10 kills in the middle of a stage, and some in every stage.
    expect(landed.filter((kill) => kill.midStage).length, `${context}: ${summary}`).toBeGreaterThanOrEqual(10);
    for (const stage of FAULT_STAGES)
      expect(
        landed.some((kill) => kill.stage === stage.stage && kill.midStage),
        `${context}: ${summary}`,
      ).toBe(true);

    const final = startCli(faultCommand(runDir, config));
    const result = await final.exited;
    expect(result.code, `${context}: ${result.stderr}`).toBe(0);

    for (const stage of FAULT_STAGES) {
      const want = await checkRecordFile(join(reference, 'records', `${stage.stage}.jsonl`));
      const got = await checkRecordFile(join(runDir, 'records', `${stage.stage}.jsonl`));
      expect(got.duplicates, context).toEqual([]);
      expect(got.corruptLines, context).toEqual([]);
      expect(got.tornBytes, context).toBe(0);
      expect(got.completeLines, `${context}: ${stage.stage} record count`).toBe(stage.units(config));
      expect([...got.records.keys()].sort(), context).toEqual([...want.records.keys()].sort());
      for (const [key, record] of want.records) expect(withoutTiming(got.records.get(key)!), `${context}: ${key}`).toEqual(withoutTiming(record));
    }
    const wantResults = JSON.parse(await readFile(join(reference, 'results.json'), 'utf8')) as Record<string, unknown>;
    const gotResults = JSON.parse(await readFile(join(runDir, 'results.json'), 'utf8')) as Record<string, unknown>;
    expect(comparableResults(gotResults), context).toEqual(comparableResults(wantResults));
    process.stderr.write(`${context}: ${landed.length} kills: ${summary}\n`);
  }, 900_000);
});
