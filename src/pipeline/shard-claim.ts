import { TASK_REGISTRY } from '../tasks/registry.js';
import { RunStoreError } from '../util/errors.js';
import type { RunConfig } from './run-config.js';
import { SHARD_SCHEME, type Shard, shardLabel } from './shard.js';
import type { ShardManifest } from './store/manifest.js';
import type { RunDirectory } from './store/run-directory.js';

/** The manifest's `shard` of a run of these tasks cut as `shard`. */
export function shardManifest(shard: Shard, config: RunConfig): ShardManifest {
  const task_versions = Object.fromEntries(TASK_REGISTRY.filter((task) => config.tasks.includes(task.name)).map((task) => [task.name, task.version]));
  return { index: shard.index, count: shard.count, scheme: SHARD_SCHEME, task_versions };
}

/**
 * State the shard in a new run directory's manifest; on resume, refuse a directory that holds another share (or
 * a whole run, or a merged one) than this command asks for, since their records would mix.
 */
export async function claimShard(store: RunDirectory, shard: Shard | undefined, config: RunConfig): Promise<void> {
  const held = store.manifest.shard;
  if (store.manifest.merged_from) {
    if (shard) {
      throw new RunStoreError(`${store.path} is a merged run directory: it cannot take --shard ${shardLabel(shard)}`, {
        hint: 'run the shard into its own --run-dir, or drop --shard to resume the merged run',
      });
    }
    return;
  }
  if (!shard) {
    if (held) {
      throw new RunStoreError(`${store.path} holds shard ${held.index}/${held.count} of a run, and this command has no --shard`, {
        hint: `add --shard ${held.index}/${held.count} to resume it, or merge the shards with \`evalpipe merge\``,
      });
    }
    return;
  }
  if (!held) {
    if (store.resumed && (await store.hasRecords())) {
      throw new RunStoreError(`${store.path} holds a whole (unsharded) run: it cannot take --shard ${shardLabel(shard)}`, {
        hint: 'choose another --run-dir for the shard, or drop --shard to resume the whole run',
      });
    }
    await store.updateManifest({ shard: shardManifest(shard, config) });
    return;
  }
  if (held.index !== shard.index || held.count !== shard.count) {
    throw new RunStoreError(`${store.path} holds shard ${held.index}/${held.count}, not ${shardLabel(shard)}`, {
      hint: `resume it with --shard ${held.index}/${held.count}, or choose another --run-dir for shard ${shardLabel(shard)}`,
    });
  }
}
