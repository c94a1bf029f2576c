import { cpus, totalmem } from 'node:os';
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { writeJsonAtomic } from '../../util/atomic-file.js';
import { differingFields } from '../../util/canonical-json.js';
import { RunStoreError } from '../../util/errors.js';
import { packageVersion } from '../../util/package-root.js';
import { MANIFEST_SCHEMA_VERSION, type Manifest } from './manifest.js';
import { configHash, configIdentity, legacyConfigHash, type RunConfig } from '../run-config.js';
import type { DatasetProvenance } from '../../datasets/load.js';
import type { RecordKind } from './record-kind.js';
import { StageRecordFile } from './stage-records.js';
import { readRunJson } from './read-run-json.js';
import { LOCK_FILE } from './run-lock.js';

export const MANIFEST_FILE = 'manifest.json';

/**
 * A run directory: manifest.json, records/<stage>.jsonl (append-only), and results.json once a run is complete.
 * Opening an existing directory with a different config refuses, naming the fields that differ.
 */
export class RunDirectory {
  private readonly stageFiles = new Map<string, StageRecordFile<object>>();

  private constructor(
    readonly path: string,
    public manifest: Manifest,
    readonly resumed: boolean,
  ) {}

  static async open(path: string, config: RunConfig, options: { fresh: boolean; runId: string }): Promise<RunDirectory> {
    const directory = resolve(path);
    if (options.fresh) await clearRunDirectory(directory);
    await mkdir(join(directory, 'records'), { recursive: true });
    const existing = await readManifest(directory);
    if (existing) {
      const wanted = configHash(config);
      if (existing.config_hash !== wanted && existing.config_hash !== legacyConfigHash(config)) {
        const fields = differingFields(configIdentity(existing.config), configIdentity(config));
        throw new RunStoreError(`${directory} holds a run with a different config (differs in: ${fields.join(', ') || 'config hash'})`, {
          hint: 'run with the same options to resume it, pass --fresh to start over there, or choose another --run-dir',
        });
      }
      return new RunDirectory(directory, existing, true);
    }
    const now = new Date().toISOString();
    const manifest: Manifest = {
      schema_version: MANIFEST_SCHEMA_VERSION,
      run_id: options.runId,
      created_at: now,
      updated_at: now,
      config,
      config_hash: configHash(config),
      tool: { name: 'evalpipe', version: packageVersion(), node: process.version },
      engine: null,
      model: null,
      datasets: {},
      hardware: {
        host_cpu: cpus()[0]?.model ?? 'unknown',
        host_cores: cpus().length,
        host_memory_gib: Math.round((totalmem() / 2 ** 30) * 10) / 10,
        device: null,
      },
      seeds: { run: config.seed },
      stop_sequences: config.humaneval.stop,
      prompt_handling: { strip_prompt: config.humaneval.stripPrompt },
    };
    await writeJsonAtomic(join(directory, MANIFEST_FILE), manifest);
    return new RunDirectory(directory, manifest, false);
  }

  async updateManifest(patch: Partial<Manifest>): Promise<void> {
    this.manifest = { ...this.manifest, ...patch, updated_at: new Date().toISOString() };
    await writeJsonAtomic(join(this.path, MANIFEST_FILE), this.manifest);
  }

  /** A stage's record file, typed and checked by the kind its task declares; opened once per run. */
  async records<R extends object>(kind: RecordKind<R>): Promise<StageRecordFile<R>> {
    let file = this.stageFiles.get(kind.stage);
    if (!file) {
      file = await StageRecordFile.open(join(this.path, 'records', `${kind.stage}.jsonl`), kind);
      this.stageFiles.set(kind.stage, file);
    }
    return file as unknown as StageRecordFile<R>;
  }

  /** Record a data set's provenance in the manifest; on resume, refuse one whose content changed under the run. */
  async recordDataset(name: string, provenance: DatasetProvenance & { textField?: string }): Promise<void> {
    const previous = this.manifest.datasets[name];
    if (previous && previous.contentSha256 !== provenance.contentSha256) {
      throw new RunStoreError(
        `the ${name} data set changed since this run started (content sha256 ${previous.contentSha256.slice(0, 12)} → ${provenance.contentSha256.slice(0, 12)})`,
        { hint: 'pin the data set revision recorded in manifest.json, or pass --fresh to start over' },
      );
    }
    if (!previous) await this.updateManifest({ datasets: { ...this.manifest.datasets, [name]: provenance } });
  }

  /** Whether any stage has a record on disk (a run with none has nothing to resume). */
  async hasRecords(): Promise<boolean> {
    let names: string[];
    try {
      names = await readdir(join(this.path, 'records'));
    } catch {
      return false;
    }
    for (const name of names) {
      if ((await stat(join(this.path, 'records', name)).catch(() => undefined))?.size) return true;
    }
    return false;
  }

  async close(): Promise<void> {
    for (const file of this.stageFiles.values()) await file.close();
    this.stageFiles.clear();
  }
}

/** Read and check manifest.json; undefined when the directory has none yet. */
export async function readManifest(directory: string): Promise<Manifest | undefined> {
  const path = join(directory, MANIFEST_FILE);
  const manifest = (await readRunJson(path, 'restore it from a copy, or pass --fresh to start the run over')) as Manifest | undefined;
  if (manifest === undefined) return undefined;
  if (
    typeof manifest !== 'object' ||
    manifest === null ||
    typeof manifest.schema_version !== 'number' ||
    typeof manifest.config_hash !== 'string' ||
    !manifest.config
  ) {
    throw new RunStoreError(`${path} is corrupt (missing schema_version, config or config_hash)`, {
      hint: 'restore it from a copy, or pass --fresh to start the run over',
    });
  }
  if (manifest.schema_version > MANIFEST_SCHEMA_VERSION) {
    throw new RunStoreError(
      `${path} has schema version ${manifest.schema_version}; this evalpipe (${packageVersion()}) reads up to ${MANIFEST_SCHEMA_VERSION}`,
      { hint: 'upgrade evalpipe to use this run directory' },
    );
  }
  return manifest;
}

/** --fresh: remove what a previous run left, but only if the directory looks like a run directory. */
async function clearRunDirectory(directory: string): Promise<void> {
  let entries: string[];
  try {
    entries = (await readdir(directory)).filter((entry) => entry !== LOCK_FILE); // the lock is this run's own
  } catch {
    return;
  }
  if (entries.length === 0) return;
  if (!entries.includes(MANIFEST_FILE)) {
    throw new RunStoreError(`refusing to clear ${directory}: it is not an evalpipe run directory (no manifest.json)`, {
      hint: 'choose an empty or new --run-dir',
    });
  }
  for (const entry of entries) await rm(join(directory, entry), { recursive: true, force: true });
}
