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
  startCli,
  waitUntil,
  withoutTiming,
  writeFaultDataset,
  type FaultCommandConfig,
} from './harness.js';

const KILLS = 12;
const CONFIG_ROWS = 240;

interface KillPoint {
  stage: string;
  target: number;
}

describe('kill -9 at random points, resume with the same command', () => {
  let root: string;
  let config: FaultCommandConfig;
  let reference: string;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'evalpipe-fault-kill-'));
    config = { dataset: join(root, 'texts.jsonl'), rows: CONFIG_ROWS, humanevalLimit: 3, samples: 2 };
    await writeFaultDataset(config.dataset, config.rows);
    reference = join(root, 'reference');
    const run = startCli(faultCommand(reference, config));
    const result = await run.exited;
    expect(result.code, result.stderr).toBe(0);
  }, 300_000);
  afterAll(async () => {
    if (root) await rm(root, { recursive: true, force: true });
  });

  it(`survives ${KILLS} kills spread over ${FAULT_STAGES.map((stage) => stage.stage).join(', ')}: identical records, none lost or duplicated`, async () => {
    const seed = Number(process.env.EVALPIPE_FAULT_SEED ?? Date.now() % 1_000_000);
    const random = seededRandom(seed);
    const context = `kill schedule seed ${seed} (replay with EVALPIPE_FAULT_SEED=${seed})`;
    // Kill points: each stage gets its share, stratified over its units so they spread from start to end.
    const points: KillPoint[] = [];
    FAULT_STAGES.forEach((stage, index) => {
      const total = stage.units(config);
      const share = Math.floor(KILLS / FAULT_STAGES.length) + (index < KILLS % FAULT_STAGES.length ? 1 : 0);
      for (let i = 0; i < share; i += 1) points.push({ stage: stage.stage, target: 1 + Math.floor(((i + random()) * Math.floor(total * 0.85)) / share) });
    });
    const runDir = join(root, 'killed');
    const landed: { stage: string; target: number; atKill: number; total: number; torn: number }[] = [];
    for (const point of points) {
      const stage = FAULT_STAGES.find((item) => item.stage === point.stage)!;
      const total = stage.units(config);
      const file = join(runDir, 'records', `${point.stage}.jsonl`);
      const target = Math.max(point.target, completeLines(file) + 1);
      if (target >= Math.floor(total * 0.9)) continue;
      const run = startCli(faultCommand(runDir, config));
      const reached = await waitUntil(() => completeLines(file) >= target, { timeoutMs: 120_000, done: run.exited });
      const exitedEarly = await Promise.race([run.exited.then(() => true), Promise.resolve(false)]);
      if (!reached || exitedEarly) {
        throw new Error(`${context}: the run ended before reaching ${target} ${point.stage} records: ${(await run.exited).stderr.slice(-800)}`);
      }
      await delay(random() * 8); // land anywhere between two records, or in the middle of one
      const engines = childPids(run.child.pid!);
      run.child.kill('SIGKILL');
      const result = await run.exited;
      expect(result.signal, `${context}: the CLI exited (code ${result.code}) before the kill: ${result.stderr.slice(-500)}`).toBe('SIGKILL');
      // The orphaned engine notices its closed stdin and exits: no process is left behind.
      await waitUntil(() => engines.every((pid) => !isAlive(pid)), { timeoutMs: 30_000, intervalMs: 50 });
      const check = await checkRecordFile(file);
      expect(check.corruptLines, `${context}: corrupt lines after a kill`).toEqual([]);
      expect(check.duplicates, `${context}: duplicated keys after a kill`).toEqual([]);
      landed.push({ stage: point.stage, target, atKill: check.completeLines, total, torn: check.tornBytes });
    }
    // At least 10 kills, each in the middle of its stage.
    expect(landed.length, `${context}: ${JSON.stringify(landed)}`).toBeGreaterThanOrEqual(10);
    for (const kill of landed) expect(kill.atKill, context).toBeLessThan(kill.total);

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
    process.stderr.write(`${context}: ${landed.length} kills at ${landed.map((kill) => `${kill.stage}@${kill.atKill}/${kill.total}${kill.torn ? '+torn' : ''}`).join(', ')}\n`);
  }, 900_000);
});
