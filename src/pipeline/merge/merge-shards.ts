import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { HubOptions } from '../../datasets/hub-options.js';
import { writeFileAtomic, writeJsonAtomic } from '../../util/atomic-file.js';
import { EvalpipeError, UsageError } from '../../util/errors.js';
import { log } from '../../util/log.js';
import { pathExists } from '../../util/path-exists.js';
import { defaultRunId, type RunConfig, type RunSettings } from '../run-config.js';
import { type Shard, shardLabel } from '../shard.js';
import type { RunContext } from '../stage.js';
import { SCORING_STAGES, stagesForTasks } from '../stages.js';
import type { Manifest } from '../store/manifest.js';
import { parseRecordLines } from '../store/record-lines.js';
import { readResults, type RunResults } from '../store/results.js';
import { MANIFEST_FILE, RunDirectory, readManifest } from '../store/run-directory.js';
import { acquireRunLock } from '../store/run-lock.js';
import { firstDisagreement, shortValue } from './manifest-agreement.js';

interface ShardDir {
  dir: string;
  manifest: Manifest;
  shard: Shard;
}

export interface MergeOutcome {
  /** results.json of the merged run; undefined when some stage was run by no shard (`missingStages`). */
  results: RunResults | undefined;
  /** Work stages no shard ran (e.g. the shards ran --stages generate): `evalpipe run --run-dir OUT` finishes them. */
  missingStages: string[];
}

const SAME_RUN_HINT = 'merge the run directories of one run: the same command run with --shard 1/N ... N/N';

/**
 * `evalpipe merge`: N shard run directories (`run --shard i/N`) into one run directory that equals a single machine's
 * run. The manifests must agree on every fact that decides results (manifest-agreement.ts), the shards must be
 * 1/N..N/N once each, and their records must cover every unit exactly once (no key in two shards, no unit in
 * none); then the records are copied as they are (line for line, checksums intact) and the score and report stages
 * run on the whole. Every refusal is one UsageError naming the field, the shard or the unit; nothing is left in OUT.
 */
export async function mergeShards(dirs: readonly string[], out: string, hub: HubOptions, signal?: AbortSignal): Promise<MergeOutcome> {
  const shards = await readShards(dirs);
  const outDir = resolve(out);
  if (shards.some((shard) => shard.dir === outDir)) throw new UsageError(`--out ${outDir} is one of the shards`, { hint: 'choose a new directory for --out' });
  if (await pathExists(outDir)) {
    if ((await readdir(outDir).catch(() => ['(not a directory)'])).length > 0) {
      throw new UsageError(`--out ${outDir} already exists and is not empty`, { hint: 'choose a new directory for --out, or remove that one' });
    }
  }
  await mkdir(join(outDir, 'records'), { recursive: true });
  const releaseLock = await acquireRunLock(outDir);
  let store: RunDirectory | undefined;
  let done = false;
  try {
    const first = shards[0]!;
    const { shard: _shard, ...rest } = first.manifest;
    const manifest: Manifest = {
      ...rest,
      updated_at: new Date().toISOString(),
      merged_from: shards.map((shard) => ({
        shard: shardLabel(shard.shard),
        dir: shard.dir,
        host_cpu: shard.manifest.hardware.host_cpu,
        device: shard.manifest.hardware.device?.name ?? null,
      })),
    };
    await writeJsonAtomic(join(outDir, MANIFEST_FILE), manifest);
    const stagesRun = await copyRecords(shards, outDir);
    const config = manifest.config as RunConfig;
    store = await RunDirectory.open(outDir, config, { fresh: false, runId: defaultRunId(config) });
    const settings: RunSettings = { runDir: outDir, fresh: false, stages: undefined, concurrency: 1, batchSize: undefined, json: false, verbose: false };
    const contextFor = (shard: Shard | undefined): RunContext => {
      const shared = new Map<string, Promise<unknown>>();
      return {
        store: store!,
        config,
        settings: { ...settings, ...(shard ? { shard } : {}) },
        hub,
        signal,
        engine: () => Promise.reject(new EvalpipeError('merge_engine', 'merge runs no model: every unit must already be in a shard')),
        once: <T>(key: string, make: () => Promise<T>): Promise<T> => {
          if (!shared.has(key)) shared.set(key, make());
          return shared.get(key) as Promise<T>;
        },
      };
    };
    const whole = contextFor(undefined);
    const work = stagesForTasks(config.tasks).filter((stage) => !SCORING_STAGES.includes(stage.name));
    const missingStages: string[] = [];
    for (const stage of work) {
      signal?.throwIfAborted();
      if ((await stage.pending(whole)) === 0) continue;
      if (!stagesRun.has(stage.name)) {
        missingStages.push(stage.name);
        continue;
      }
      for (const shard of shards) {
        const missing = await stage.pending(contextFor(shard.shard));
        if (missing > 0) {
          throw new UsageError(`shard ${shardLabel(shard.shard)} (${shard.dir}) is incomplete: ${missing} ${stage.name} units have no record`, {
            hint: `finish it (its own command, with --shard ${shardLabel(shard.shard)}, resumes it), then merge again`,
          });
        }
      }
    }
    if (missingStages.length > 0) {
      done = true;
      return { results: undefined, missingStages };
    }
    for (const name of SCORING_STAGES) {
      const stage = stagesForTasks(config.tasks).find((candidate) => candidate.name === name)!;
      await stage.run(whole);
    }
    done = true;
    return { results: await readResults(outDir), missingStages };
  } finally {
    await store?.close();
    await releaseLock();
    if (!done) await rm(outDir, { recursive: true, force: true }).catch(() => undefined);
  }
}

/** Read every shard's manifest; refuse a directory that is not a shard, disagreeing manifests, and missing or repeated shards. */
async function readShards(dirs: readonly string[]): Promise<ShardDir[]> {
  if (dirs.length === 0) throw new UsageError('merge needs the run directories of the shards', { hint: 'evalpipe merge DIR... --out DIR' });
  const shards: ShardDir[] = [];
  for (const given of dirs) {
    const dir = resolve(given);
    const manifest = await readManifest(dir).catch((error: unknown) => {
      throw new UsageError(`${dir} cannot be read as a run directory: ${(error as Error).message}`, { hint: 'pass the run directories of the shards' });
    });
    if (!manifest) throw new UsageError(`${dir} is not an evalpipe run directory (no ${MANIFEST_FILE})`, { hint: 'pass the run directories of the shards' });
    if (!manifest.shard) {
      throw new UsageError(`${dir} is not a shard (its manifest has no shard: it was not run with --shard i/N)`, { hint: SAME_RUN_HINT });
    }
    shards.push({ dir, manifest, shard: { index: manifest.shard.index, count: manifest.shard.count } });
  }
  const first = shards[0]!;
  for (const other of shards.slice(1)) {
    const disagreement = firstDisagreement(first.manifest, other.manifest);
    if (disagreement) {
      throw new UsageError(
        `the shards disagree on ${disagreement.field}: ${first.dir} (shard ${shardLabel(first.shard)}) has ${shortValue(disagreement.first)}, ${other.dir} (shard ${shardLabel(other.shard)}) has ${shortValue(disagreement.other)}`,
        { hint: SAME_RUN_HINT },
      );
    }
    const device = (shard: ShardDir) => shard.manifest.hardware.device?.name ?? 'no engine';
    if (device(first) !== device(other)) {
      log.warn(
        `merge: shard ${shardLabel(first.shard)} ran on ${device(first)}, shard ${shardLabel(other.shard)} on ${device(other)}: bits can differ between devices`,
      );
    }
  }
  const count = first.shard.count;
  const byIndex = new Map<number, ShardDir>();
  for (const shard of shards) {
    const twice = byIndex.get(shard.shard.index);
    if (twice)
      throw new UsageError(`shard ${shardLabel(shard.shard)} is given twice (${twice.dir} and ${shard.dir})`, {
        hint: `pass each of the ${count} shards once`,
      });
    byIndex.set(shard.shard.index, shard);
  }
  for (let index = 1; index <= count; index += 1) {
    if (!byIndex.has(index)) {
      throw new UsageError(`shard ${index}/${count} is missing: ${shards.length} of ${count} shards given`, {
        hint: `pass the run directories of all ${count} shards (run the missing one with --shard ${index}/${count})`,
      });
    }
  }
  return [...byIndex.entries()].sort(([a], [b]) => a - b).map(([, shard]) => shard);
}

/**
 * Copy every shard's record files into OUT, in shard order, each complete record line as it is (a torn last line
 * of an interrupted shard is left behind, so its unit counts as missing). A key in two shards is refused: the
 * shards overlap. Returns the stages that have a record file in some shard.
 */
async function copyRecords(shards: readonly ShardDir[], outDir: string): Promise<Set<string>> {
  const files = new Map<string, { lines: string[]; owner: Map<string, ShardDir> }>();
  for (const shard of shards) {
    const names = await readdir(join(shard.dir, 'records')).catch(() => [] as string[]);
    for (const name of names.filter((file) => file.endsWith('.jsonl')).sort()) {
      const path = join(shard.dir, 'records', name);
      const text = await readFile(path, 'utf8');
      const parsed = parseRecordLines(text, path); // checks every record's checksum
      const merged = files.get(name) ?? { lines: [], owner: new Map<string, ShardDir>() };
      files.set(name, merged);
      const kept = new Set<string>();
      for (const line of text.slice(0, parsed.completeBytes).split('\n')) {
        if (line.trim() === '') continue;
        const key = String((JSON.parse(line) as { key: unknown }).key);
        if (kept.has(key)) continue; // a key written twice in one file: the first record wins, as every reader takes it
        const owner = merged.owner.get(key);
        if (owner) {
          throw new UsageError(
            `the shards overlap: ${key} of records/${name} is in shard ${shardLabel(owner.shard)} (${owner.dir}) and in shard ${shardLabel(shard.shard)} (${shard.dir})`,
            { hint: `${SAME_RUN_HINT}; each unit belongs to exactly one shard` },
          );
        }
        kept.add(key);
        merged.owner.set(key, shard);
        merged.lines.push(line);
      }
    }
  }
  for (const [name, merged] of files) await writeFileAtomic(join(outDir, 'records', name), merged.lines.map((line) => `${line}\n`).join(''));
  return new Set([...files.keys()].map((name) => name.replace(/\.jsonl$/, '')));
}
