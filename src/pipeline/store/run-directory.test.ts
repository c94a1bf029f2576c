import { mkdtemp, readFile, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildRunConfig } from '../../cli/run-options.js';
import { RunDirectory } from './run-directory.js';
import { configHash, defaultRunId, legacyConfigHash } from '../run-config.js';

const smoke = () => buildRunConfig({ preset: 'smoke' }).config;

describe('RunDirectory', () => {
  it('creates a manifest with the config and its hash, and resumes with the same config', async () => {
    const dir = join(await mkdtemp(join(tmpdir(), 'evalpipe-run-')), 'run');
    const config = smoke();
    const first = await RunDirectory.open(dir, config, { fresh: false, runId: defaultRunId(config) });
    expect(first.resumed).toBe(false);
    await first.close();
    const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8'));
    expect(manifest.config_hash).toBe(configHash(config));
    expect(manifest.schema_version).toBe(1);
    const second = await RunDirectory.open(dir, smoke(), { fresh: false, runId: defaultRunId(config) });
    expect(second.resumed).toBe(true);
    await second.close();
  });

  it("hashes and compares only the settings of the run's own tasks, and still resumes a directory hashed the old way", async () => {
    const dir = join(await mkdtemp(join(tmpdir(), 'evalpipe-run-')), 'run');
    const config = smoke();
    const unused = buildRunConfig({ preset: 'smoke', 'top-p': 0.5, batches: '1' }).config; // HumanEval and latency settings
    expect(configHash(unused)).toBe(configHash(config));
    await (await RunDirectory.open(dir, config, { fresh: false, runId: 'a' })).close();
    const resumed = await RunDirectory.open(dir, unused, { fresh: false, runId: 'a' });
    expect(resumed.resumed).toBe(true);
    await resumed.close();
    const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8'));
    await writeFile(join(dir, 'manifest.json'), JSON.stringify({ ...manifest, config_hash: legacyConfigHash(config) }));
    const legacy = await RunDirectory.open(dir, config, { fresh: false, runId: 'a' });
    expect(legacy.resumed).toBe(true);
    await legacy.close();
  });

  it('refuses a changed config and names the differing fields; --fresh starts over', async () => {
    const dir = join(await mkdtemp(join(tmpdir(), 'evalpipe-run-')), 'run');
    const config = smoke();
    await (await RunDirectory.open(dir, config, { fresh: false, runId: 'a' })).close();
    const changed = buildRunConfig({ preset: 'smoke', rows: 5, seed: 7 }).config;
    await expect(RunDirectory.open(dir, changed, { fresh: false, runId: 'a' })).rejects.toThrow(/perplexity\.rows.*seed|seed.*perplexity\.rows/);
    const fresh = await RunDirectory.open(dir, changed, { fresh: true, runId: 'a' });
    expect(fresh.resumed).toBe(false);
    await fresh.close();
  });

  it('names a corrupt manifest and a manifest from a newer schema', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'evalpipe-run-'));
    await writeFile(join(dir, 'manifest.json'), '{"schema_version": 1, "conf');
    await expect(RunDirectory.open(dir, smoke(), { fresh: false, runId: 'a' })).rejects.toThrow(/manifest\.json is corrupt/);
    await writeFile(join(dir, 'manifest.json'), JSON.stringify({ schema_version: 9, config: {}, config_hash: 'x' }));
    await expect(RunDirectory.open(dir, smoke(), { fresh: false, runId: 'a' })).rejects.toThrow(/schema version 9/);
  });

  it('refuses to --fresh a directory that is not a run directory', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'evalpipe-run-'));
    await mkdir(join(dir, 'precious'));
    await expect(RunDirectory.open(dir, smoke(), { fresh: true, runId: 'a' })).rejects.toThrow(/not an evalpipe run directory/);
  });
});
